"""Exports: a campaign's results table (Parquet or CSV), an Axolotl setup to retrain one trial's recipe, and Hugging
Face folders of trained models (a run, a trial, a dialogue layer, or a campaign's top k).

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bookmix.campaign.status import results_table
from bookmix.campaign.store import open_campaign
from bookmix.errors import BookmixError, require
from bookmix.utils.io import atomic_open, atomic_write_json, atomic_write_text

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
    with open_campaign(campaign_dir) as store:
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


# ---- Hugging Face folders: `bookmix export hf` ----------------------------------------------------------------------
# One entry point for everything that holds trained weights: a run folder (`bookmix train`, `bookmix train-pack`), a
# campaign trial (its folder, or its id with the campaign), a dialogue layer (`bookmix sft`, or a campaign's
# dialogue/<trial id>/: exported with its chat template), a fine-tune trial (its merged hf/ folder is copied), and the
# top k trials of a campaign in one call.
HF_INDEX = "models.json"
"""With --top: OUT/models.json lists the exported trials, best first, with their objectives."""


@dataclass(frozen=True)
class HFExport:
    """One exported model: where it came from and where it went."""

    source: str
    """The run (or trial, or dialogue) folder read."""
    out: str
    kind: str
    """``run``, ``trial``, ``dialogue`` (chat template included) or ``finetune`` (its merged hf/ copied)."""
    tokenizer: str | None
    """The tokenizer.json exported beside the weights."""
    trial_id: str | None = None
    rank: int | None = None
    objective: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _run_folder(path: Path) -> Path:
    return path.parent if path.name == "checkpoint" else path


def _campaign_of(run: Path) -> Path | None:
    """The campaign folder a trial folder lives in (CAMPAIGN/trials/<id>), or None."""
    camp = run.resolve().parent.parent
    return camp if run.resolve().parent.name == "trials" and (camp / "campaign.sqlite").exists() else None


def _library_of(run: Path, library: str | Path | None) -> Path | None:
    """The library whose tokenizer the model reads: the one given, else the one its checkpoint or trial names."""
    if library is not None:
        return Path(library)
    from bookmix.training.checkpoint import read_checkpoint

    ckpt = read_checkpoint(run)
    named = ((ckpt.config.get("meta") or {}).get("library")) if ckpt is not None else None
    if named:
        return Path(named)
    camp = _campaign_of(run)
    if camp is not None:
        return Path(json.loads(find_trial(camp, run.name)["spec"])["library"])
    return None


def export_hf_run(source: str | Path, out: str | Path, library: str | Path | None = None) -> HFExport:
    """Export one run, trial or dialogue folder as a Hugging Face folder that ``AutoModelForCausalLM`` and
    ``AutoTokenizer`` load."""
    from bookmix.models.export import export_hf
    from bookmix.training.checkpoint import read_checkpoint
    from bookmix.training.finetune import HF_DIR
    from bookmix.training.sft import SFT_RESULT, TOKENIZER, export_chat_hf

    run, out = _run_folder(Path(source)), Path(out)
    if not run.is_dir():
        raise BookmixError(f"{source}: no such folder (give a run folder, a campaign trial or a campaign with --top)")
    trial_id = run.name if _campaign_of(run) else None
    ckpt = read_checkpoint(run)
    if ckpt is None or ckpt.config.get("finetune"):
        if (run / HF_DIR / "config.json").is_file() and (run / "result.json").is_file():  # a finished fine-tune trial
            _copy_tree(run / HF_DIR, out)  # LoRA already merged, the base's tokenizer beside it
            tok = out / TOKENIZER
            return HFExport(str(run), str(out), "finetune", str(tok) if tok.exists() else None, trial_id)
        if ckpt is not None:
            raise BookmixError(f"{run}: a fine-tune run that has not finished (no {HF_DIR}/ yet); resume it first")
        camp = _campaign_of(run)
        if camp is not None:
            raise BookmixError(f"{run}: this trial's weights were deleted (it fell outside the campaign's top-k "
                               "weights kept, selection.top_k); export one of the top trials, or "
                               f"`bookmix export hf {camp} --top K`")
        if (run / "campaign.sqlite").exists():
            raise BookmixError(f"{run}: a campaign folder: give --top K (the K best trials) or a trial id with "
                               f"--campaign {run}")
        raise BookmixError(f"{run}: no checkpoint here (expected checkpoint/state.json): not a run or trial folder")
    if (run / SFT_RESULT).is_file() or ((run / TOKENIZER).is_file() and ckpt.config.get("sft")):
        export_chat_hf(run, out)  # the dialogue layer's own tokenizer (chat tokens) and chat template
        return HFExport(str(run), str(out), "dialogue", str(run / TOKENIZER), trial_id)
    lib = _library_of(run, library)
    if lib is None:
        raise BookmixError(f"{run}: the checkpoint does not name its library; give --library DIR (its tokenizer.json "
                           "is exported with the model)")
    tok = lib / "tokenizer.json"
    if not tok.is_file():
        raise BookmixError(f"{lib}: no tokenizer.json here (is it a bookmix library?); give --library DIR")
    export_hf(run, out, tokenizer_json=tok)
    return HFExport(str(run), str(out), "trial" if trial_id else "run", str(tok), trial_id)


def _copy_tree(src: Path, out: Path) -> None:
    """Copy a folder's files into ``out``, each through a temporary name."""
    out.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            tmp = out / f".{f.name}.tmp"
            shutil.copyfile(f, tmp)
            tmp.replace(out / f.name)


def export_hf_trial(campaign_dir: str | Path, trial: str, out: str | Path, library: str | Path | None = None) -> HFExport:
    """Export a campaign trial given by id (a unique prefix is enough)."""
    row = find_trial(campaign_dir, trial)
    res = export_hf_run(Path(campaign_dir) / "trials" / row["id"], out, library)
    return HFExport(**{**res.to_dict(), "trial_id": row["id"], "objective": row["objective"]})


def export_hf_top(campaign_dir: str | Path, top: int, out: str | Path, library: str | Path | None = None) -> list[HFExport]:
    """The ``top`` best completed trials that still have their weights, each into ``OUT/<rank>-<trial id>/``, best
    first, listed in ``OUT/models.json``. Trials whose weights retention deleted are skipped (said in the index)."""
    if top < 1:
        raise BookmixError(f"--top: must be ≥ 1, got {top}")
    campaign_dir, out = Path(campaign_dir), Path(out)
    with open_campaign(campaign_dir) as store:
        rows = store.ranked()
    if not rows:
        raise BookmixError(f"{campaign_dir}: no completed trial with an objective yet (see `bookmix status {campaign_dir}`)")
    from bookmix.training.checkpoint import read_checkpoint

    def has_weights(trial_id: str) -> bool:
        folder = campaign_dir / "trials" / trial_id
        return read_checkpoint(folder) is not None or (folder / "hf" / "config.json").is_file()

    done: list[HFExport] = []
    skipped: list[str] = []  # better trials than the last exported whose weights retention deleted
    for t in rows:
        if len(done) == top:
            break
        if not has_weights(t["id"]):
            skipped.append(t["id"])
            continue
        res = export_hf_run(campaign_dir / "trials" / t["id"], out / f"{len(done) + 1:02d}-{t['id']}", library)
        done.append(HFExport(**{**res.to_dict(), "trial_id": t["id"], "rank": len(done) + 1, "objective": t["objective"]}))
    if not done:
        raise BookmixError(f"{campaign_dir}: no completed trial has its weights any more (selection.keep_weights)")
    atomic_write_json(out / HF_INDEX, {"campaign": str(campaign_dir.resolve()), "top": top,
                                       "models": [d.to_dict() for d in done],
                                       "skipped_without_weights": skipped})
    return done
