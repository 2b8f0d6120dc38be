"""Exports of a campaign: the results table (Parquet or CSV) and an Axolotl setup to retrain one trial's recipe.

The Axolotl export is for users who want to train a recipe with Axolotl instead of bookmix's trainer. It writes

    OUT/axolotl.yaml      the config: our model shape, the trial's optimiser settings, data kept in stream order
    OUT/data.jsonl        the recipe's training stream, one {"text": ...} per window, in the exact bookmix order
    OUT/init_model/       a fresh, untrained Llama model of the trial's shape (seeded like the trial) + tokenizer

The stream already holds every epoch of the recipe, so the config trains one epoch over it without shuffling.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bookmix.campaign.status import open_store, results_table
from bookmix.errors import BookmixError, require
from bookmix.utils.io import atomic_open, atomic_write_text

DECODE_BATCH = 1024
"""Windows decoded per tokenizer call (batched in Rust; bounds memory for streams of millions of windows)."""


def export_results(campaign_dir: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Write the results table as ``parquet`` or ``csv``; returns the file written."""
    if fmt not in ("parquet", "csv"):
        raise BookmixError(f"--format: choose parquet or csv, got {fmt!r}")
    campaign_dir = Path(campaign_dir)
    rows = results_table(campaign_dir)
    path = Path(out) if out else campaign_dir / f"results.{fmt}"
    columns = list(rows[0]) if rows else ["trial_id"]
    if fmt == "csv":
        with atomic_open(path, "w") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        return path
    pa = require("pyarrow", "hf", "Parquet export")
    pq = require("pyarrow.parquet", "hf", "Parquet export")
    table = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def find_trial(campaign_dir: str | Path, trial: str) -> dict[str, Any]:
    """A trial row by id (a unique prefix is enough)."""
    with open_store(campaign_dir) as store:
        rows = [t for t in store.trials() if t["id"].startswith(trial)]
    if not rows:
        raise BookmixError(f"trial {trial!r}: not in the campaign {campaign_dir}")
    if len(rows) > 1:
        raise BookmixError(f"trial {trial!r}: ambiguous prefix ({len(rows)} trials match); give more characters")
    return rows[0]


def axolotl_config(spec: dict[str, Any], windows: int, init_dir: str, data_file: str) -> dict[str, Any]:
    """The Axolotl config that retrains a trial's recipe as bookmix trained it."""
    train = spec["train"]
    model = spec["model"]
    steps = max(1, math.ceil(windows / (train["micro_batch"] * train["grad_accum"])))
    warmup = int(train["warmup"]) if train["warmup"] >= 1 else round(train["warmup"] * steps)
    return {
        "base_model": init_dir,
        "model_type": "LlamaForCausalLM",
        "tokenizer_type": "PreTrainedTokenizerFast",
        "datasets": [{"path": data_file, "ds_type": "json", "type": "completion", "field": "text"}],
        # bookmix's order is the experiment: keep it (no shuffling of the merged data, a sequential sampler)
        "shuffle_merged_datasets": False,
        "curriculum_sampling": True,
        "sample_packing": False,
        "val_set_size": 0.0,
        "sequence_len": int(model["block_size"]),
        "num_epochs": 1,  # the data file already repeats the recipe's epochs
        "micro_batch_size": int(train["micro_batch"]),
        "gradient_accumulation_steps": int(train["grad_accum"]),
        "optimizer": "adamw_torch",
        "learning_rate": float(train["lr"]),
        "lr_scheduler": {"cosine": "cosine", "wsd": "warmup_stable_decay", "constant": "constant_with_warmup"}[
            train["schedule"]
        ],
        "cosine_min_lr_ratio": float(train["min_lr_ratio"]) if train["schedule"] == "cosine" else None,
        "warmup_steps": warmup,
        "weight_decay": float(train["weight_decay"]),
        "adam_beta1": float(train["betas"][0]),
        "adam_beta2": float(train["betas"][1]),
        "adam_epsilon": float(train["eps"]),
        "max_grad_norm": float(train["grad_clip"]),
        "bf16": "auto",
        "seed": int(spec["seed"]),
        "output_dir": "./outputs",
        "logging_steps": int(train["log_every"]),
    }


def _init_model(spec: dict[str, Any], lib, out: Path) -> None:
    """A freshly initialised model of the trial's shape and seed, exported as a Hugging Face Llama folder."""
    import torch

    from bookmix.models.config import ModelConfig
    from bookmix.models.export import export_hf
    from bookmix.models.model import LM
    from bookmix.training.checkpoint import save_checkpoint

    cfg = ModelConfig.from_dict(spec["model"])
    torch.manual_seed(int(spec["seed"]))
    model = LM(cfg)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        optimizer = torch.optim.AdamW(model.parameters())
        save_checkpoint(Path(tmp), model, optimizer, {"model": cfg.to_dict(), "meta": {"init": True}}, {"step": 0})
        export_hf(tmp, out, Path(lib.path) / "tokenizer.json")


def export_axolotl(campaign_dir: str | Path, trial: str, out: str | Path | None = None) -> Path:
    """Write an Axolotl config, the recipe's data in stream order and an untrained init model; returns OUT."""
    import numpy as np
    import yaml

    from bookmix.library import Library
    from bookmix.recipes import Recipe

    row = find_trial(campaign_dir, trial)
    spec = json.loads(row["spec"])
    if "base" in spec["model"]:
        raise BookmixError(f"trial {row['id']}: continues the Hugging Face base {spec['model']['base']} (fine-tune mode); "
                           "the Axolotl export retrains from-scratch trials only")
    out = Path(out) if out else Path(campaign_dir) / "axolotl" / row["id"]
    out.mkdir(parents=True, exist_ok=True)
    lib = Library.open(spec["library"])
    stream = Recipe.from_dict(spec["recipe"]).stream(lib, int(spec["model"]["block_size"]))
    with atomic_open(out / "data.jsonl", "w") as fh:
        for lo in range(0, stream.n_windows, DECODE_BATCH):
            win = np.asarray(stream.windows(lo, min(lo + DECODE_BATCH, stream.n_windows)))[:, :-1]
            for text in lib.tokenizer.decode_batch(win.tolist(), skip_special_tokens=False):
                fh.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    init = out / "init_model"
    if init.exists():
        shutil.rmtree(init)
    _init_model(spec, lib, init)
    cfg = axolotl_config(spec, stream.n_windows, "./init_model", "./data.jsonl")
    header = (
        f"# Axolotl config for bookmix trial {row['id']} (recipe {row['recipe_id']}, seed {row['seed']}).\n"
        "# Paths are relative to this folder: run `axolotl train axolotl.yaml` from here.\n"
    )
    cfg = {k: v for k, v in cfg.items() if v is not None}
    atomic_write_text(out / "axolotl.yaml", header + yaml.safe_dump(cfg, sort_keys=False))
    return out
