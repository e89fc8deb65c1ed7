"""Training: the fit loop and its training step, checkpoints, run folders and their marker,
metrics and baselines, the batch-size cache, DDP.

Import what you need from the modules: ``fintrain.train.loop`` (``fit``, ``train_step``),
``fintrain.train.run`` (whole runs: ``plan_run``, ``start_run``, ``resume_run``). This package
module imports nothing, so that ``fintrain.train.marker`` and ``fintrain.train.batch_cache``
load without torch's training stack.
"""
