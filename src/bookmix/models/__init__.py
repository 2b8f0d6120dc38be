"""Models: shapes and presets (config.py, no torch), the LLaMA-style LM (model.py), Hugging Face export (export.py)."""
