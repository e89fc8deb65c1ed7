"""fintrain: train PatchTST on daily market data, on a laptop, a CPU or an NVIDIA GPU."""

__version__ = "0.1.0"
