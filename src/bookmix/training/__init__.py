"""Training: the single-model loop (loop.py), its settings (config.py), checkpoints (checkpoint.py), the benchmark.

Import the modules directly (``from bookmix.training.loop import train``): this package imports torch lazily.
"""
