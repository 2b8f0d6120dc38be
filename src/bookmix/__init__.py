"""bookmix: brute-force search for the training data that makes small language models learn best.

The Python API mirrors the CLI; import the rooms directly (``bookmix.library``, ``bookmix.recipes``, ...).
"""

__version__ = "0.1.0"
