"""Fine-tune mode: continue pretraining an existing Hugging Face causal LM on a recipe, with LoRA (peft) or fully.

    ft = FinetuneConfig(base="models/my-base", method="lora")
    result = finetune_recipe("lib/", recipe, ft, TrainConfig(lr=2e-4), "trials/ab12")
    model, block_size = load_finetuned("trials/ab12")          # for the eval suite, like any trial's model

The trainer's machinery is reused as it is: the step (``train_step``), the schedule, the optimizer, the checkpoint
swap and its recovery, the held-out loss, ``TrainResult``. :class:`CausalLMAdapter` makes the Hugging Face model look
like our ``LM`` to them: ``forward(idx, targets) -> (logits, loss)``, and a state dict of the *trainable* tensors only
(LoRA's adapters, or every weight when training fully), so a LoRA checkpoint is megabytes, not the base model.

Files in ``out_dir``: ``checkpoint/`` (trainable tensors, AdamW and RNG state, the resolved config), ``curve.jsonl``,
``hf/`` (the finished model as a plain ``LlamaForCausalLM``-style folder: LoRA merged into the weights, tokenizer
copied from the base), ``adapter/`` (LoRA only: the peft adapter on its own) and ``result.json``, written last.

The base's tokenizer must be the library's (same vocabulary and merges): the recipe's token ids are fed to the model
as they are, and the eval suite encodes its items with the library's tokenizer. A different one is a clear error.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from bookmix.errors import BookmixError, require
from bookmix.models.model import IGNORE_INDEX
from bookmix.recipes.stream import WindowSource
from bookmix.training.checkpoint import read_checkpoint, recover, restore_training_state, save_checkpoint
from bookmix.training.config import TrainConfig
from bookmix.training.curve import CURVE, Curve
from bookmix.training.device import compute_dtype, resolve_device
from bookmix.training.evaluate import heldout_loss, sample_windows
from bookmix.training.result import RESULT, TrainResult
from bookmix.training.schedule import lr_at
from bookmix.training.step import make_optimizer, train_step
from bookmix.utils.io import fsync_dir

HF_DIR, ADAPTER_DIR = "hf", "adapter"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


class FinetuneConfig(BaseModel):
    """Which base model a trial continues from, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Path
    """A local Hugging Face causal-LM folder (config.json, weights, tokenizer.json). Never downloaded."""
    method: Literal["lora", "full"] = "lora"
    """``lora``: train low-rank adapters on every linear layer, base frozen; ``full``: train every weight."""
    lora_r: int = Field(8, ge=1)
    """Adapter rank. 8 is the common default: enough for continued pretraining on a few books, tiny to store."""
    lora_alpha: float = Field(16.0, gt=0)
    """Adapter scale numerator (the update is scaled by alpha / r); 2·r is the usual pairing."""
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter input. 0: runs stay deterministic and short runs do not need it."""
    seq_len: int | None = Field(None, ge=2)
    """Window length T. None: the base's context (max_position_embeddings), at most 1024 to bound memory."""

    def math_fields(self) -> dict:
        data = self.model_dump(mode="json")
        data["base"] = str(Path(self.base).resolve())
        if self.method == "full":
            for k in ("lora_r", "lora_alpha", "lora_dropout"):
                data.pop(k)
        return data


# ---- the base model ------------------------------------------------------------------------------------------------
def _transformers():
    return require("transformers", "hf", "fine-tuning a Hugging Face base model")


def base_context(base: Path) -> int:
    """The base's context length from its config.json (no weights read)."""
    path = Path(base) / "config.json"
    if not path.is_file():
        raise BookmixError(f"{base}: not a Hugging Face model folder (no config.json)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BookmixError(f"{path}: not valid JSON ({exc.msg})") from None
    return int(cfg.get("max_position_embeddings") or cfg.get("n_positions") or 1024)


def check_tokenizer(base: Path, library) -> None:  # noqa: ANN001 - bookmix.library.Library
    """The base must read the library's token ids: same vocabulary and merges, and an embedding big enough."""
    from tokenizers import Tokenizer

    from bookmix.library.tokenizer import fingerprint

    path = Path(base) / "tokenizer.json"
    if not path.is_file():
        raise BookmixError(f"{base}: no tokenizer.json (a fast tokenizer is needed to check it matches the library's)")
    try:
        theirs = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise BookmixError(f"{path}: not a readable tokenizer.json ({exc})") from None
    ours = library.tokenizer
    if fingerprint(theirs) != fingerprint(ours):
        raise BookmixError(
            f"{path}: the base model's tokenizer differs from the library's ({Path(library.path) / 'tokenizer.json'}; "
            f"{theirs.get_vocab_size()} vs {ours.get_vocab_size()} tokens): the library's token ids would mean other "
            "text to this model. Ingest the books with the base's tokenizer (--tokenizer PATH) or pick a base "
            "trained on this library (bookmix exports one per trial)"
        )
    vocab = json.loads((Path(base) / "config.json").read_text(encoding="utf-8")).get("vocab_size", 0)
    if vocab < library.vocab_size:
        raise BookmixError(f"{base}/config.json: vocab_size {vocab} is smaller than the library's {library.vocab_size}")


def load_base(ft: FinetuneConfig, seed: int) -> nn.Module:
    """The base model in fp32, wrapped in LoRA adapters (seeded) when ``ft.method`` is lora."""
    tr = _transformers()
    try:
        model = tr.AutoModelForCausalLM.from_pretrained(str(ft.base), dtype=torch.float32, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BookmixError(f"{ft.base}: cannot load the base model ({str(exc).splitlines()[0]})") from None
    if ft.method == "full":
        return model
    peft = require("peft", "hf", "LoRA fine-tuning")
    torch.manual_seed(seed)  # the adapters' A matrices are random: the seed makes them the trial's
    lora = peft.LoraConfig(r=ft.lora_r, lora_alpha=ft.lora_alpha, lora_dropout=ft.lora_dropout,
                           target_modules="all-linear", task_type="CAUSAL_LM")
    return peft.get_peft_model(model, lora)


class CausalLMAdapter(nn.Module):
    """A Hugging Face causal LM behind our LM's interface (see the module docstring)."""

    def __init__(self, hf: nn.Module, block_size: int) -> None:
        super().__init__()
        self.hf = hf
        # What the checkpoint code reads from an LM's config: nothing here is tied at our level.
        self.cfg = SimpleNamespace(tie_embeddings=False, block_size=block_size, name="hf-base")

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, *, logits: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # ``logits=False`` is accepted for the trainer's sake and ignored: a hub model makes its logits anyway.
        out = self.hf(input_ids=idx).logits  # (B, T, V)
        if targets is None:
            return out, None
        loss = F.cross_entropy(out.float().flatten(0, 1), targets.reshape(-1), ignore_index=IGNORE_INDEX)
        return out, loss

    def trainable(self) -> dict[str, nn.Parameter]:
        """Trainable parameters by name, each tensor once (a tied embedding and head are one parameter)."""
        seen, out = set(), {}
        for name, p in self.hf.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out[name] = p
        return out

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:  # noqa: ARG002 - the checkpoint's view
        return {k: p.detach() for k, p in self.trainable().items()}

    def load_state_dict(self, tensors, strict: bool = False):  # noqa: ANN001, ARG002
        params = self.trainable()
        with torch.no_grad():
            for k, v in tensors.items():
                if k in params:
                    params[k].copy_(v)
        return sorted(set(params) - set(tensors)), sorted(set(tensors) - set(params))  # (missing, unexpected)


# ---- training ------------------------------------------------------------------------------------------------------
def finetune(
    ft: FinetuneConfig,
    train_cfg: TrainConfig,
    stream: WindowSource,
    out_dir: str | Path,
    heldout: WindowSource | None = None,
    device: str | torch.device | None = None,
    on_log=None,  # noqa: ANN001 - Callable[[dict], None], as for the trainer
    meta: dict | None = None,
) -> TrainResult:
    """Continue pretraining ``ft.base`` on ``stream`` (or resume, or return the stored result). Windows longer than
    the base's context are an error; step ``s`` trains windows ``s·E .. (s+1)·E`` as the trainer does."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = TrainResult.load(out)
    if done is not None:
        return done
    T = int(stream.seq_len)
    ctx = base_context(ft.base)
    if ctx < T:
        raise BookmixError(f"stream: seq_len {T} exceeds the base model's context of {ctx} tokens")
    n = int(stream.n_windows) if train_cfg.max_tokens is None else min(int(stream.n_windows), train_cfg.max_tokens // T)
    if n < 1:
        raise BookmixError(f"stream: no window of {T + 1} tokens to train on")
    E = train_cfg.windows_per_step
    total_steps = math.ceil(n / E)
    dev = resolve_device(device if device is not None else train_cfg.device)
    dtype = compute_dtype(dev, train_cfg.dtype)
    config = {
        "finetune": ft.math_fields(),
        "train": train_cfg.model_dump(mode="json"),
        "stream": {"seq_len": T, "n_windows": n, "stream_windows": int(stream.n_windows)},
        "total_steps": total_steps,
        "meta": dict(meta or {}),
        "torch": torch.__version__,
    }
    recover(out)
    ckpt = read_checkpoint(out)
    if ckpt is not None:
        for key in ("finetune", "stream"):
            if ckpt.config.get(key) != config[key]:
                raise BookmixError(f"{ckpt.path / 'config.json'}: cannot resume: the {key} settings differ from this run's")
        if TrainConfig.from_dict(ckpt.config["train"]).math_fields() != train_cfg.math_fields():
            raise BookmixError(f"{ckpt.path / 'config.json'}: cannot resume: the training settings differ from this run's")

    torch.manual_seed(train_cfg.seed)
    model = CausalLMAdapter(load_base(ft, train_cfg.seed), T).to(dev).train()
    opt = make_optimizer(model, train_cfg, dev)
    if ckpt is not None:
        restore_training_state(ckpt, model, opt)
        step, tokens, seconds0 = int(ckpt.state["step"]), int(ckpt.state["tokens"]), float(ckpt.state["seconds"])
        last_loss = ckpt.state.get("last_loss")
    else:
        step, tokens, seconds0, last_loss = 0, 0, 0.0, None
    if on_log is not None:
        on_log({"event": "start", "step": step, "total_steps": total_steps, "device": str(dev), "micro_batch": train_cfg.micro_batch})
    held = sample_windows(heldout, train_cfg.eval_windows) if heldout is not None else None
    curve = Curve(out / CURVE, keep_until_step=step)
    t0, last_ckpt, held_value = time.perf_counter(), time.perf_counter(), None
    while step < total_steps:
        lo, hi = step * E, min((step + 1) * E, n)
        batch = torch.from_numpy(np.asarray(stream.windows(lo, hi)).astype(np.int64))
        loss, grad_norm = train_step(model, opt, batch, micro_batch=train_cfg.micro_batch, lr=lr_at(step, total_steps, train_cfg),
                                     grad_clip=train_cfg.grad_clip, device=dev, dtype=dtype, step=step)
        step, tokens = step + 1, tokens + (hi - lo) * T
        last = step == total_steps
        if step % train_cfg.log_every == 0 or last:
            last_loss = float(loss)
            if not math.isfinite(last_loss):
                return _finish(out, "diverged", None, None, step, tokens, seconds0 + time.perf_counter() - t0, step - 1)
            record = {"step": step, "tokens": tokens, "loss": last_loss, "lr": opt.param_groups[0]["lr"], "grad_norm": float(grad_norm)}
            if last and held is not None:
                record["heldout_loss"] = held_value = heldout_loss(model, held, train_cfg.micro_batch, dev, dtype)
            curve.append(record)
            if on_log is not None:
                on_log(record)
        now = time.perf_counter()
        if last or (train_cfg.checkpoint_every and step % train_cfg.checkpoint_every == 0) or (
            train_cfg.checkpoint_seconds and now - last_ckpt >= train_cfg.checkpoint_seconds
        ):
            state = {"step": step, "tokens": tokens, "micro_batch": train_cfg.micro_batch, "grad_accum": train_cfg.grad_accum,
                     "seconds": seconds0 + now - t0, "last_loss": last_loss}
            save_checkpoint(out, model, opt, config, state)
            last_ckpt = now
    if held_value is None and held is not None:  # resumed after the final checkpoint
        held_value = heldout_loss(model, held, train_cfg.micro_batch, dev, dtype)
    save_finetuned(model.hf, ft, out)
    return _finish(out, "completed", last_loss, held_value, step, tokens, seconds0 + time.perf_counter() - t0, None)


def _finish(out: Path, status, final_loss, held, steps, tokens, seconds, diverged_at) -> TrainResult:  # noqa: ANN001
    result = TrainResult(
        final_loss=final_loss, heldout_loss=held, steps=steps, tokens=tokens, seconds=seconds,
        tokens_per_s=tokens / seconds if seconds > 0 else 0.0, diverged_at_step=diverged_at, status=status,
        paths={"checkpoint": str(out / "checkpoint"), "curve": str(out / CURVE), "result": str(out / RESULT),
               "hf": str(out / HF_DIR)},
    )
    result.save(out)
    return result


def save_finetuned(hf: nn.Module, ft: FinetuneConfig, out: Path) -> Path:
    """Write ``out/hf`` (LoRA merged in, tokenizer files from the base) and, for LoRA, ``out/adapter``. Each folder is
    written beside its final name and renamed into place, so a kill leaves the old folder or the new one."""
    if ft.method == "lora":
        _replace_dir(out / ADAPTER_DIR, lambda d: hf.save_pretrained(str(d)))
        merged = hf.merge_and_unload()  # the base's own classes again, adapters folded into the weights
    else:
        merged = hf

    def write(d: Path) -> None:
        merged.save_pretrained(str(d))
        for name in _TOKENIZER_FILES:
            if (Path(ft.base) / name).is_file():
                shutil.copyfile(Path(ft.base) / name, d / name)

    return _replace_dir(out / HF_DIR, write)


def _replace_dir(final: Path, write) -> Path:  # noqa: ANN001
    tmp, old = final.with_name(f".{final.name}.new"), final.with_name(f".{final.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)
    return final


# ---- a trial: recipe in, model out ---------------------------------------------------------------------------------
def finetune_recipe(
    library,  # noqa: ANN001 - a Library or its folder
    recipe,  # noqa: ANN001 - bookmix.recipes.Recipe
    ft: FinetuneConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    device: str | None = None,
    on_log=None,  # noqa: ANN001
    meta: dict | None = None,
) -> TrainResult:
    """The fine-tune counterpart of ``train_recipe``: check the tokenizer, stream the recipe at the base's context
    (capped at 1024), hold out the library's holdout books, continue pretraining."""
    from bookmix.library import Library
    from bookmix.training.heldout import holdout_windows

    lib = Library.open(library) if isinstance(library, str | Path) else library
    T = ft.seq_len or min(base_context(ft.base), 1024)  # also: is it a model folder at all
    check_tokenizer(ft.base, lib)
    stream = recipe.stream(lib, T)
    heldout = holdout_windows(lib, T, train_cfg.eval_windows)
    info = {"recipe": recipe.to_dict(), "recipe_id": recipe.id, "library": str(Path(lib.path).resolve()), **(meta or {})}
    return finetune(ft, train_cfg, stream, out_dir, heldout=heldout, device=device, on_log=on_log, meta=info)


def load_finetuned(out_dir: str | Path, device: str | torch.device = "cpu") -> tuple[CausalLMAdapter, int]:
    """(model in eval mode, block size) of a finished fine-tune run, ready for ``evaluate(..., block_size=)``."""
    out = Path(out_dir)
    if not (out / HF_DIR / "config.json").is_file():
        raise BookmixError(f"{out}: no finished fine-tuned model here (expected {HF_DIR}/config.json)")
    ckpt = read_checkpoint(out)
    T = int(ckpt.config["stream"]["seq_len"]) if ckpt else base_context(out / HF_DIR)
    hf = _transformers().AutoModelForCausalLM.from_pretrained(str(out / HF_DIR), dtype=torch.float32, local_files_only=True)
    return CausalLMAdapter(hf, T).to(device).eval(), T
