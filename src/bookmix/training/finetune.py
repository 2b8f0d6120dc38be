"""Fine-tune mode: continue pretraining an existing Hugging Face causal LM on a recipe, with LoRA (peft) or fully.

    ft = FinetuneConfig(base="models/my-base", method="lora")
    result = finetune_recipe("lib/", recipe, ft, TrainConfig(lr=2e-4), "trials/ab12")  # bookmix.trial
    model, block_size = load_finetuned("trials/ab12")          # for the eval suite, like any trial's model

The run is the engine's (engine.py) and the stepper the single trainer's (``loop.ModelStepper``): the same plan,
schedule, checkpoints, divergence and out-of-memory handling, ``events.jsonl`` and ``TrainResult``. :class:`CausalLMAdapter` makes the Hugging Face model look
like our ``LM`` to them: ``forward(idx, targets) -> (logits, loss)``, and a state dict of the *trainable* tensors only
(LoRA's adapters, or every weight when training fully), so a LoRA checkpoint is megabytes, not the base model.

Files in ``out_dir``: ``checkpoint/`` (trainable tensors, AdamW and RNG state, the resolved config), ``curve.jsonl``,
``events.jsonl``,
``hf/`` (the finished model as a plain ``LlamaForCausalLM``-style folder: LoRA merged into the weights, tokenizer
copied from the base), ``adapter/`` (LoRA only: the peft adapter on its own) and ``result.json``, written last.

The base's tokenizer must be the library's (same vocabulary and merges): the recipe's token ids are fed to the model
as they are, and the eval suite encodes its items with the library's tokenizer. A different one is a clear error.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from bookmix.errors import BookmixError, require
from bookmix.models.model import IGNORE_INDEX
from bookmix.recipes.stream import WindowSource
from bookmix.training.checkpoint import read_checkpoint
from bookmix.training.config import TrainConfig
from bookmix.training.device import compute_dtype, resolve_device
from bookmix.training.engine import LogFn, train_runs
from bookmix.training.faults import FaultInjector
from bookmix.training.loop import ModelStepper, open_window_run
from bookmix.training.result import TrainResult
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
    vocab = _base_vocab(base)
    if vocab < library.vocab_size:
        raise BookmixError(f"{base}/config.json: vocab_size {vocab} is smaller than the library's {library.vocab_size}")


def _base_vocab(base: Path) -> int:
    return int(json.loads((Path(base) / "config.json").read_text(encoding="utf-8")).get("vocab_size", 0))


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

    def state_dict(self, *args, **kwargs) -> dict[str, torch.Tensor]:  # type: ignore[override]  # noqa: ARG002 - the checkpoint's view
        return {k: p.detach() for k, p in self.trainable().items()}

    def load_state_dict(self, tensors, strict: bool = False):  # type: ignore[override]  # noqa: ANN001, ARG002
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
    on_log: LogFn | None = None,
    meta: dict | None = None,
    faults: FaultInjector | None = None,
) -> TrainResult:
    """Continue pretraining ``ft.base`` on ``stream`` (or resume, or return the stored result) in the engine, as
    ``loop.train`` trains a bookmix model: the same plan, cadence, divergence and out-of-memory handling, events."""
    out = Path(out_dir)
    ctx = base_context(ft.base)
    run = open_window_run({"finetune": ft.math_fields()}, ctx, train_cfg, stream, out, heldout, _base_vocab(ft.base),
                          meta, on_log)
    if run.result is not None:
        return run.result
    run.paths["hf"] = str(out / HF_DIR)
    dev = resolve_device(device if device is not None else train_cfg.device)
    torch.manual_seed(train_cfg.seed)
    model = CausalLMAdapter(load_base(ft, train_cfg.seed), int(stream.seq_len)).to(dev)
    run.on_complete = functools.partial(save_finetuned, model.hf, ft, out)
    stepper = ModelStepper(model, train_cfg, dev, compute_dtype(dev, train_cfg.dtype), name=f"base {str(ft.base)!r}",
                           faults=faults, checkpoint=run.checkpoint)
    return train_runs(stepper, [run], dev)[0]


def save_finetuned(hf: Any, ft: FinetuneConfig, out: Path) -> Path:
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


def load_finetuned(out_dir: str | Path, device: str | torch.device = "cpu") -> tuple[CausalLMAdapter, int]:
    """(model in eval mode, block size) of a finished fine-tune run, ready for ``evaluate(..., block_size=)``."""
    out = Path(out_dir)
    if not (out / HF_DIR / "config.json").is_file():
        raise BookmixError(f"{out}: no finished fine-tuned model here (expected {HF_DIR}/config.json)")
    ckpt = read_checkpoint(out)
    T = int(ckpt.config["stream"]["seq_len"]) if ckpt else base_context(out / HF_DIR)
    hf = _transformers().AutoModelForCausalLM.from_pretrained(str(out / HF_DIR), dtype=torch.float32, local_files_only=True)
    return CausalLMAdapter(hf, T).to(device).eval(), T
