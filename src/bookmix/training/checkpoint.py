"""Checkpoints: weights in safetensors, optimizer and RNG state, data position, the resolved configs.

Layout of ``OUT/checkpoint/``::

    model.safetensors   weights under Hugging Face Llama names (a tied head is stored once, as the embedding)
    optimizer.pt        AdamW state and RNG states: tensors and plain containers only, read with weights_only=True
    config.json         {"model": ..., "train": ..., "stream": ..., "total_steps": ..., "meta": {...}}
    state.json          {"step", "tokens", "micro_batch", "grad_accum", "seconds", "last_loss"}: written last

A checkpoint is replaced as a whole: the new one is written into ``.checkpoint.new/`` (each file fsynced), then the
old folder is renamed aside and the new one renamed into place. :func:`recover` finishes or undoes a swap that a kill
interrupted, so a reader always sees one complete checkpoint or none.
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from bookmix.errors import BookmixError
from bookmix.models.config import ModelConfig
from bookmix.models.model import LM
from bookmix.utils.io import atomic_write_bytes, atomic_write_json, fsync_dir

CHECKPOINT = "checkpoint"
_NEW, _OLD = ".checkpoint.new", ".checkpoint.old"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    config: dict
    state: dict


def weights(model: LM) -> dict[str, torch.Tensor]:
    """The state dict to store: contiguous tensors, the tied head left out (it is the embedding)."""
    sd = model.state_dict()
    if model.cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    return {k: v.detach().contiguous() for k, v in sd.items()}


def load_weights(model: LM, data: bytes | dict[str, torch.Tensor], source: Path) -> None:
    tensors = st_load(data) if isinstance(data, bytes) else data
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.cfg.tie_embeddings)]
    if missing or unexpected:
        raise BookmixError(f"{source}: weights do not match the model config (missing {missing[:3]}, unexpected {unexpected[:3]})")


def save_checkpoint(out_dir: Path, model: LM, optimizer: torch.optim.Optimizer, config: dict, state: dict) -> Path:
    """Write a complete checkpoint beside the current one and swap it in."""
    out_dir = Path(out_dir)
    new, final, old = out_dir / _NEW, out_dir / CHECKPOINT, out_dir / _OLD
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    atomic_write_bytes(new / "model.safetensors", st_save(weights(model), metadata={"format": "pt"}))
    buf = io.BytesIO()
    rng: dict[str, object] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "rng": rng}, buf)
    atomic_write_bytes(new / "optimizer.pt", buf.getvalue())
    atomic_write_json(new / "config.json", config)
    atomic_write_json(new / "state.json", state)  # last: its presence marks the folder complete
    fsync_dir(new)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    new.rename(final)
    fsync_dir(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return final


def recover(out_dir: Path) -> None:
    """Finish (or undo) a checkpoint swap that was interrupted, and drop half-written folders."""
    out_dir = Path(out_dir)
    new, final, old = out_dir / _NEW, out_dir / CHECKPOINT, out_dir / _OLD
    if not final.exists():
        if (new / "state.json").exists():
            new.rename(final)  # killed between the two renames: the new checkpoint is complete
        elif old.exists():
            old.rename(final)
        fsync_dir(out_dir)
    shutil.rmtree(new, ignore_errors=True)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)


def _checkpoint_dir(path: Path) -> Path:
    """The folder holding the current checkpoint, found without changing anything on disk: a reader (an eval
    while training runs) must never finish or undo the writer's swap; only the trainer calls :func:`recover`."""
    path = Path(path)
    if (path / "state.json").exists():
        return path
    for name in (CHECKPOINT, _NEW, _OLD):  # mid-swap: a complete new folder wins over the old one
        if (path / name / "state.json").exists() and (name != _NEW or not (path / CHECKPOINT).exists()):
            return path / name
    return path / CHECKPOINT


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint of a run folder (or a checkpoint folder itself), or None when there is none yet."""
    ckpt = _checkpoint_dir(path)
    state_file = ckpt / "state.json"
    if not state_file.exists():
        return None
    try:
        config = json.loads((ckpt / "config.json").read_text(encoding="utf-8"))
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BookmixError(f"{ckpt}: unreadable checkpoint ({exc})") from None
    return Checkpoint(ckpt, config, state)


def restore_training_state(ckpt: Checkpoint, model: LM, optimizer: torch.optim.Optimizer) -> None:
    """Load weights, optimizer state and RNG states into a freshly built model and optimizer."""
    load_weights(model, (ckpt.path / "model.safetensors").read_bytes(), ckpt.path / "model.safetensors")
    # weights_only: a checkpoint can never run code on load, only rebuild tensors and plain containers.
    blob = torch.load(ckpt.path / "optimizer.pt", map_location="cpu", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    torch.set_rng_state(blob["rng"]["torch"])
    if "cuda" in blob["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[LM, ModelConfig, dict]:
    """(model in eval mode, its config, the caller's ``meta``) from a run folder or its ``checkpoint/`` folder."""
    ckpt = read_checkpoint(Path(path))
    if ckpt is None:
        raise BookmixError(f"{path}: no checkpoint here (expected {CHECKPOINT}/state.json)")
    cfg = ModelConfig.from_dict(ckpt.config["model"])
    model = LM(cfg)
    load_weights(model, (ckpt.path / "model.safetensors").read_bytes(), ckpt.path / "model.safetensors")
    return model.to(device).eval(), cfg, dict(ckpt.config.get("meta") or {})
