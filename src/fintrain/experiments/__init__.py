"""Experiments: run folders read back, sweeps over budgets and seeds, and scaling reports."""
