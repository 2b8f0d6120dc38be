"""Dialogue fine-tuning (SFT): a trained bookmix model learns to answer in the chat format of ``models/chat.py``.

    result = sft("trials/ab12/", "chat.jsonl", "lib/", "trials/ab12/dialogue", SFTConfig(), suite="suite.yaml")

Steps: load the checkpoint; add the chat tokens to the library's tokenizer and grow the embedding by as many rows
(new rows start at the mean embedding, so the new tokens begin as an "average" token rather than noise); split the
conversations into train and held-out (by seed); measure the held-out chat loss; train with the loss on assistant
tokens only, in the engine (engine.py: checkpoints, divergence, out-of-memory backoff, events.jsonl, result.json);
measure it again; run the eval suite; export a Hugging Face folder whose tokenizer carries the chat
template. Files in ``out_dir``: ``checkpoint/`` (the trainer's format: ``load_model`` and ``bookmix eval`` read it),
``tokenizer.json`` (library tokenizer + chat tokens), ``curve.jsonl``, ``events.jsonl``, ``result.json``,
``eval.json``, ``hf/`` and ``sft.json``,
written last: its presence marks the run finished, and a finished run is not trained again.

Step ``s`` trains on conversations ``order[s·B:(s+1)·B]`` (B = micro_batch × grad_accum) of a fixed order (one seeded permutation per epoch), so the
data position is the step and a killed run resumes from its checkpoint to the same result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bookmix.errors import BookmixError
from bookmix.models.chat import (
    CHAT_TEMPLATE,
    END_TOKEN,
    ChatData,
    Conversation,
    chat_token_ids,
    encode_chats,
    read_chat_file,
    with_chat_tokens,
)
from bookmix.models.config import ModelConfig
from bookmix.models.model import IGNORE_INDEX, LM
from bookmix.training.checkpoint import load_model, read_checkpoint
from bookmix.training.config import SFTConfig
from bookmix.training.device import autocast, compute_dtype, resolve_device
from bookmix.training.engine import Batch, LogFn, open_run, train_runs
from bookmix.training.faults import FaultInjector
from bookmix.training.loop import ModelStepper
from bookmix.training.result import read_result
from bookmix.utils.io import atomic_write_json, atomic_write_text

SFT_RESULT = "sft.json"
TOKENIZER = "tokenizer.json"

Example = tuple[np.ndarray, np.ndarray]
"""(ids, loss mask) of one encoded conversation."""


# ---- the result -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SFTResult:
    base: str
    """The checkpoint that was fine-tuned."""
    out_dir: str
    train_conversations: int
    heldout_conversations: int
    rejected: list[dict] = field(default_factory=list)
    """Lines of the chat file left out: {"line", "reason"}."""
    steps: int = 0
    assistant_tokens: int = 0
    """Tokens that carried loss, summed over all steps."""
    heldout_loss_before: float | None = None
    heldout_loss_after: float | None = None
    """Mean loss per assistant token on the held-out conversations, before and after fine-tuning."""
    seconds: float = 0.0
    objective: float | None = None
    """The eval suite's objective on the fine-tuned model (None without a suite)."""
    paths: dict[str, str] = field(default_factory=dict)
    status: str = "completed"
    """'completed', or 'diverged' (no eval, no export)."""
    diverged_at_step: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, out_dir: Path) -> SFTResult | None:
        return read_result(cls, Path(out_dir) / SFT_RESULT)


# ---- pure parts ------------------------------------------------------------------------------------------------------
def split_conversations(convs: list[Conversation], fraction: float, seed: int) -> tuple[list[Conversation], list[Conversation]]:
    """(train, held-out): a seeded draw, at least one held out when there are two or more and fraction > 0."""
    n = len(convs)
    k = 0 if fraction == 0 or n < 2 else min(n - 1, max(1, round(fraction * n)))
    perm = np.random.default_rng([seed, 12]).permutation(n)
    held = set(perm[:k].tolist())
    return [c for i, c in enumerate(convs) if i not in held], [c for i, c in enumerate(convs) if i in held]


def step_order(n: int, epochs: int, seed: int) -> np.ndarray:
    """Conversation indices in training order: one seeded permutation per epoch, concatenated."""
    return np.concatenate([np.random.default_rng([seed, 12, e]).permutation(n) for e in range(epochs)])


def pad_batch(examples: list[Example], block_size: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), both (B, L) with L the longest example (≤ block_size). Targets are the next token where the
    mask says it is learned, IGNORE_INDEX elsewhere (prompt, role tokens, padding). Longer examples keep their start."""
    lens = [min(len(ids), block_size + 1) for ids, _ in examples]
    L = max(lens)
    ids = np.full((len(examples), L), pad_id, dtype=np.int64)
    mask = np.zeros((len(examples), L), dtype=bool)
    for row, ((e_ids, e_mask), n) in enumerate(zip(examples, lens, strict=True)):
        ids[row, :n], mask[row, :n] = e_ids[:n], e_mask[:n]
    targets = np.where(mask[:, 1:], ids[:, 1:], IGNORE_INDEX)
    return torch.from_numpy(ids[:, :-1]), torch.from_numpy(targets)


def grow_vocab(model: LM, vocab_size: int) -> LM:
    """Give ``model`` ``vocab_size`` embedding rows (and head rows when untied), new rows at the mean row."""
    old = model.cfg.vocab_size
    if vocab_size <= old:
        return model
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        extra = emb.mean(0, keepdim=True).expand(vocab_size - old, -1)
        model.model.embed_tokens.weight = torch.nn.Parameter(torch.cat([emb, extra]))
        model.model.embed_tokens.num_embeddings = vocab_size
        if model.cfg.tie_embeddings:
            model.lm_head.weight = model.model.embed_tokens.weight
        else:
            head = model.lm_head.weight
            model.lm_head.weight = torch.nn.Parameter(torch.cat([head, head.mean(0, keepdim=True).expand(vocab_size - old, -1)]))
        model.lm_head.out_features = vocab_size
    model.cfg = model.cfg.with_vocab(vocab_size)
    return model


@torch.no_grad()
def chat_loss(model: torch.nn.Module, examples: list[Example], block_size: int, pad_id: int, batch: int,
              device: torch.device, dtype: torch.dtype) -> float | None:
    """Mean loss per learned (assistant) token over ``examples``: summed, not averaged per batch, so every token
    counts once whatever the batching."""
    if not examples:
        return None
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(examples), batch):
        x, y = (t.to(device) for t in pad_batch(examples[i:i + batch], block_size, pad_id))
        with autocast(device, dtype):
            logits, _ = model(x)
        total += float(F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum"))
        count += int((y != IGNORE_INDEX).sum())
    model.train(was)
    return total / count if count else None


# ---- the run ---------------------------------------------------------------------------------------------------------
def sft(
    checkpoint: str | Path,
    data: str | Path | ChatData,
    library: str | Path,
    out_dir: str | Path,
    cfg: SFTConfig | None = None,
    suite: str | Path | None = None,
    export: bool = True,
    on_log: LogFn | None = None,
    faults: FaultInjector | None = None,
) -> SFTResult:
    """Fine-tune the model in ``checkpoint`` (a run folder) on a chat jsonl file. See the module docstring. ``on_log``
    gets the curve records and events as the trainer's does; ``faults`` injects simulated faults (tests only)."""
    cfg = cfg or SFTConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = SFTResult.load(out)
    if done is not None:
        return done
    chats = data if isinstance(data, ChatData) else read_chat_file(data)
    tok_path = _base_tokenizer(Path(checkpoint), Path(library))
    from tokenizers import Tokenizer

    base_tok = Tokenizer.from_file(str(tok_path))
    tokenizer = with_chat_tokens(base_tok)
    ids = chat_token_ids(tokenizer)

    model, base_cfg, base_meta = load_model(checkpoint)
    if base_tok.get_vocab_size() > base_cfg.vocab_size:
        raise BookmixError(f"{tok_path}: {base_tok.get_vocab_size()} tokens but the model in {checkpoint} has only "
                           f"{base_cfg.vocab_size}: it was not trained with this tokenizer")
    model = grow_vocab(model, tokenizer.get_vocab_size())
    mcfg: ModelConfig = model.cfg
    T = mcfg.block_size

    train_convs, held_convs = split_conversations(chats.conversations, cfg.heldout_fraction, cfg.train.seed)
    train_ex, held_ex = encode_chats(tokenizer, train_convs), encode_chats(tokenizer, held_convs)
    if all(not m[1:min(len(m), T + 1)].any() for _, m in train_ex):
        raise BookmixError(f"{chats.path}: no assistant token falls inside the model's {T}-token context")

    order = step_order(len(train_ex), cfg.epochs, cfg.train.seed)
    B = cfg.train.windows_per_step
    base, total_steps = str(Path(checkpoint).resolve()), math.ceil(len(order) / B)
    config = {
        "model": mcfg.to_dict(),
        "train": cfg.train.model_dump(mode="json"),
        "sft": cfg.math_fields(),
        "stream": {"kind": "chat", "conversations": len(train_ex), "sft_base": base, "chat_data_sha256": _sha256(chats.path)},
        "total_steps": total_steps,
        "meta": {**base_meta, "sft_base": base, "chat_data": str(chats.path), "chat_tokens": dataclasses.asdict(ids)},
        "torch": torch.__version__,
    }
    run = open_run(out, config, cfg.train, total_steps, resume=("model", "sft", "stream"), on_log=on_log,
                   paths={"tokenizer": str(out / TOKENIZER)})
    dev = resolve_device(cfg.train.device)
    dtype = compute_dtype(dev, cfg.train.dtype)

    def score(m: torch.nn.Module, held: list[Example], micro_batch: int, d: torch.device, t: torch.dtype) -> float | None:
        return chat_loss(m, held, T, ids.end, micro_batch, d, t)

    def batch(step: int) -> Batch:
        x, y = pad_batch([train_ex[i] for i in order[step * B:(step + 1) * B]], T, ids.end)
        return x, y, int((y != IGNORE_INDEX).sum())

    if run.result is None:
        model = model.to(dev)
        if run.checkpoint is None:
            run.extra_state["heldout_before"] = score(model, held_ex, B, dev, dtype)
        run.batches, run.held = batch, held_ex
        atomic_write_text(out / TOKENIZER, tokenizer.to_str())
        stepper = ModelStepper(model, cfg.train, dev, dtype, name=f"model {mcfg.name!r}", faults=faults, score=score,
                               checkpoint=run.checkpoint)
        train_runs(stepper, [run], dev)
    tr = run.result
    assert tr is not None
    stored = read_checkpoint(out)
    before = run.extra_state.get("heldout_before", stored.state.get("heldout_before") if stored else None)
    paths = dict(tr.paths)
    objective = None
    if tr.status == "completed" and suite is not None:
        from bookmix.evals.run import evaluate

        er = evaluate(load_model(out, device=dev)[0], suite, library, device=dev)
        er.save(out / "eval.json")
        objective, paths["eval"] = er.objective.value, str(out / "eval.json")
    if tr.status == "completed" and export:
        paths["hf"] = str(export_chat_hf(out, out / "hf"))
    result = SFTResult(
        base=base, out_dir=str(out.resolve()), train_conversations=len(train_ex),
        heldout_conversations=len(held_ex), rejected=[dataclasses.asdict(r) for r in chats.rejected], steps=tr.steps,
        assistant_tokens=tr.tokens, heldout_loss_before=before, heldout_loss_after=tr.heldout_loss,
        seconds=tr.seconds, objective=objective, paths=paths, status=tr.status, diverged_at_step=tr.diverged_at_step,
    )
    atomic_write_json(out / SFT_RESULT, result.to_dict())
    return result


def export_chat_hf(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Export a fine-tuned run as a ``LlamaForCausalLM`` folder whose tokenizer has the chat template and stops at
    the end-of-turn token, so ``apply_chat_template`` and ``generate`` work on it as they are."""
    from bookmix.models.export import export_hf

    run_dir, out = Path(run_dir), Path(out_dir)
    tok_path = run_dir / TOKENIZER
    export_hf(run_dir, out, tokenizer_json=tok_path)
    from tokenizers import Tokenizer

    ids = chat_token_ids(Tokenizer.from_file(str(tok_path)))
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    tok_cfg.update({"eos_token": END_TOKEN, "chat_template": CHAT_TEMPLATE})
    atomic_write_json(out / "tokenizer_config.json", tok_cfg)
    atomic_write_text(out / "chat_template.jinja", CHAT_TEMPLATE)  # where transformers 5 saves it too
    specials = json.loads((out / "special_tokens_map.json").read_text(encoding="utf-8"))
    atomic_write_json(out / "special_tokens_map.json", {**specials, "eos_token": END_TOKEN})
    gen = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    book_eos = gen.get("eos_token_id")
    gen["eos_token_id"] = [ids.end] + ([book_eos] if isinstance(book_eos, int) else [])
    atomic_write_json(out / "generation_config.json", gen)
    return out


# ---- the dialogue stage of a campaign --------------------------------------------------------------------------------
def dialogue_layer(
    trial_dirs: list[Path],
    data: str | Path,
    library: str | Path,
    out_root: str | Path,
    cfg: SFTConfig | None = None,
    suite: str | Path | None = None,
) -> list[SFTResult]:
    """Fine-tune each trial's model (best first) into ``out_root/<trial folder name>/``; writes
    ``out_root/dialogue.json`` with every result. Idempotent: finished runs are read back, interrupted ones resume."""
    chats = read_chat_file(data)
    results = [sft(d, chats, library, Path(out_root) / Path(d).name, cfg, suite=suite) for d in trial_dirs]
    atomic_write_json(Path(out_root) / "dialogue.json", {"data": str(Path(data).resolve()),
                                                         "runs": [r.to_dict() for r in results]})
    return results


# ---- helpers ---------------------------------------------------------------------------------------------------------
def _base_tokenizer(checkpoint: Path, library: Path) -> Path:
    """The tokenizer the base model reads: a fine-tuned run's own (it has the chat tokens), else the library's."""
    run = checkpoint.parent if checkpoint.name == "checkpoint" else checkpoint
    for candidate in (run / TOKENIZER, library / TOKENIZER):
        if candidate.is_file():
            return candidate
    raise BookmixError(f"{library}: no {TOKENIZER} here (is it a bookmix library?)")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def load_chat_model(run_dir: str | Path, device: str = "cpu") -> tuple[LM, object]:
    """(model in eval mode, tokenizer with the chat tokens) of a fine-tuned run folder, for ``models.chat.reply``."""
    from tokenizers import Tokenizer

    run = Path(run_dir)
    run = run.parent if run.name == "checkpoint" else run
    if not (run / TOKENIZER).is_file():
        raise BookmixError(f"{run}: no {TOKENIZER} here: not a dialogue fine-tuned run (make one with `bookmix sft`)")
    tokenizer = Tokenizer.from_file(str(run / TOKENIZER))
    chat_token_ids(tokenizer)
    model, _, _ = load_model(run, device=resolve_device(device))
    return model, tokenizer


def resolve_library(checkpoint: str | Path, library: str | Path | None) -> Path:
    """The library given, else the one the checkpoint's meta names (``bookmix train`` stores it)."""
    if library is not None:
        return Path(library)
    ckpt = read_checkpoint(Path(checkpoint))
    if ckpt is None:
        raise BookmixError(f"{checkpoint}: no checkpoint here (expected checkpoint/state.json)")
    named = (ckpt.config.get("meta") or {}).get("library")
    if not named:
        raise BookmixError(f"{checkpoint}: the checkpoint does not name its library; give --library DIR")
    return Path(named)
