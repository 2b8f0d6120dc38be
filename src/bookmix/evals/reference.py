"""Reference models for the library's perplexity signal (``bookmix library score --model``).

A reference is a bookmix checkpoint (a trial or run folder: trained on a reference shelf the user names, on this
library's tokenizer) or any Hugging Face causal LM (a local folder or a hub name: its own tokenizer re-reads the
windows' text). Both give the summed loss in nats, the tokens predicted and the bytes of text those tokens cover, so
``q_bpb`` compares across tokenizers. :func:`reference_factory` gives the picklable zero-argument factory that
``bookmix.library.score.score`` builds once per worker process.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np

from bookmix.errors import BookmixError, require

HF_WINDOW = 512  # library tokens per window for a Hugging Face model (its tokenizer may give somewhat more or fewer)
HF_BATCH = 8


def _device(name: str | None) -> str:
    import torch

    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def is_checkpoint(path: Path) -> bool:
    return (path / "state.json").exists() or (path / "checkpoint" / "state.json").exists()


class BookmixReference:
    """A bookmix checkpoint on the library's own token ids: windows of ``block_size + 1`` tokens, all but the first
    predicted."""

    def __init__(self, path: str | Path, device: str | None = None) -> None:
        from bookmix.training.checkpoint import load_model

        self.device = _device(device)
        self.model, self.cfg, _ = load_model(path, self.device)
        self.name = f"bookmix:{Path(path).resolve()}"
        self.block_size = self.cfg.block_size + 1

    def loss(self, windows: Sequence[np.ndarray], texts: Sequence[str]) -> tuple[float, int, int]:
        import torch
        import torch.nn.functional as F

        nats, n, nbytes = 0.0, 0, 0
        for w, text in zip(windows, texts, strict=True):
            if len(w) < 2:
                continue
            ids = torch.as_tensor(np.asarray(w, dtype=np.int64), device=self.device)[None]
            if int(ids.max()) >= self.cfg.vocab_size:
                raise BookmixError(
                    f"{self.name}: token id {int(ids.max())} is past the model's {self.cfg.vocab_size}-token vocabulary "
                    "(trained on another tokenizer: use it as a Hugging Face export instead)"
                )
            with torch.no_grad():
                logits, _ = self.model(ids[:, :-1])
                nats += float(F.cross_entropy(logits[0].float(), ids[0, 1:], reduction="sum"))
            n += len(w) - 1
            nbytes += round(len(text.encode("utf-8")) * (len(w) - 1) / len(w))  # the first token is context only
        return nats, n, nbytes


class HFReference:
    """A Hugging Face causal LM reading the windows' text with its own tokenizer (batched, padded on the right)."""

    def __init__(self, name: str, device: str | None = None, window: int = HF_WINDOW) -> None:
        transformers = require("transformers", "hf", "a Hugging Face reference model")
        import torch

        self.device = _device(device)
        try:
            self.tok = transformers.AutoTokenizer.from_pretrained(name)
            self.model = transformers.AutoModelForCausalLM.from_pretrained(name, torch_dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise BookmixError(f"--model {name}: cannot load a Hugging Face causal LM ({exc})") from exc
        self.model.to(self.device).eval()
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token or self.tok.unk_token or self.tok.convert_ids_to_tokens(0)
        limit = getattr(self.model.config, "max_position_embeddings", None) or window
        self.max_len = int(min(limit, self.tok.model_max_length or limit))
        self.name = f"hf:{name}"
        self.block_size = min(window, self.max_len)

    def loss(self, windows: Sequence[np.ndarray], texts: Sequence[str]) -> tuple[float, int, int]:
        import torch
        import torch.nn.functional as F

        nats, n, nbytes = 0.0, 0, 0
        for i in range(0, len(texts), HF_BATCH):
            batch = [t for t in texts[i : i + HF_BATCH] if t]
            if not batch:
                continue
            fast = bool(getattr(self.tok, "is_fast", False))  # offsets need a fast (Rust) tokenizer
            enc = self.tok(batch, return_tensors="pt", padding=True, truncation=True, max_length=self.max_len,
                           add_special_tokens=False, return_offsets_mapping=fast)  # fmt: skip
            ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
            with torch.no_grad():
                logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
            targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            nats += float(F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="sum", ignore_index=-100))
            n += int((targets != -100).sum())
            for j, text in enumerate(batch):  # bytes of the text the predicted tokens cover (truncation included)
                if not fast:
                    nbytes += len(text.encode("utf-8"))
                    continue
                offsets = enc["offset_mapping"][j][enc["attention_mask"][j].bool()]
                if len(offsets) > 1:
                    nbytes += len(text[int(offsets[1][0]) : int(offsets[-1][1])].encode("utf-8"))
        return nats, n, nbytes


def load_reference(spec: str, device: str | None = None):
    """A bookmix checkpoint folder → :class:`BookmixReference`; anything else → :class:`HFReference` (an HF folder,
    or a hub name downloaded by transformers)."""
    path = Path(spec)
    if path.is_dir() and is_checkpoint(path):
        return BookmixReference(path, device)
    if path.exists() and not (path / "config.json").exists():
        raise BookmixError(
            f"--model {spec}: neither a bookmix checkpoint (state.json) nor a Hugging Face model folder (config.json)"
        )
    return HFReference(spec, device)


def reference_factory(spec: str, device: str | None = None):
    """(picklable factory, the name the catalog records) for ``--model SPEC``; checks that SPEC loads, here, once."""
    from bookmix.library import score

    ref = load_reference(spec, device)
    factory = partial(load_reference, spec, device)
    score._REFERENCES[repr(factory)] = ref  # an in-process run uses this one instead of loading it again
    return factory, ref.name
