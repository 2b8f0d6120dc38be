"""The library's tokenizer: a byte-level BPE (Hugging Face ``tokenizers``) with one special end-of-book token.

Byte-level means every string is encodable (Cyrillic, accents, stray symbols), and the saved ``tokenizer.json``
loads as ``transformers.PreTrainedTokenizerFast(tokenizer_file=...)`` for exported models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from bookmix.errors import BookmixError
from bookmix.utils.io import atomic_write_text

TOKENIZER_NAME = "tokenizer.json"
EOB_TOKEN = "<|endofbook|>"
DEFAULT_VOCAB = 16384  # big enough for two scripts (Latin + Cyrillic) yet uint16 and a small embedding table
MIN_VOCAB = 256 + 1 + 16  # the 256 byte symbols, the end-of-book token and a few merges


def new_bpe() -> tuple[Tokenizer, pre_tokenizers.ByteLevel]:
    tok = Tokenizer(models.BPE())
    # NFC here too, so text encoded later (prompts, eval items) is normalised the way the books were.
    tok.normalizer = normalizers.NFC()
    # No prefix space: a book starts with whatever it starts with, and chunked encoding gives the same ids.
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    return tok, byte_level


def train_bpe(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB) -> Tokenizer:
    """Train a byte-level BPE on ``texts`` (a bounded sample); the end-of-book token gets id 0."""
    if vocab_size < MIN_VOCAB:
        raise BookmixError(f"--tokenizer train:{vocab_size}: vocabulary must be at least {MIN_VOCAB}")
    tok, byte_level = new_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOB_TOKEN],
        initial_alphabet=byte_level.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def save(tok: Tokenizer, path: Path) -> None:
    atomic_write_text(path, tok.to_str(pretty=False))


def load(path: Path) -> Tokenizer:
    """Load a tokenizer.json that has the end-of-book token; BookmixError naming the file otherwise."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise BookmixError(f"{path}: not a readable tokenizer.json ({exc})") from exc
    if tok.token_to_id(EOB_TOKEN) is None:
        raise BookmixError(f"{path}: has no {EOB_TOKEN} token (bookmix separates books with it)")
    return tok


def parse_spec(spec: str) -> tuple[str, int | Path]:
    """``train:VOCAB`` → ('train', VOCAB); anything else → ('path', Path)."""
    if spec.startswith("train"):
        _, _, n = spec.partition(":")
        try:
            vocab = int(n) if n else DEFAULT_VOCAB
        except ValueError:
            raise BookmixError(f"--tokenizer {spec!r}: expected train:VOCAB with an integer VOCAB") from None
        if vocab < MIN_VOCAB:
            raise BookmixError(f"--tokenizer {spec!r}: vocabulary must be at least {MIN_VOCAB}")
        return "train", vocab
    path = Path(spec)
    if not path.is_file():
        raise BookmixError(f"--tokenizer {spec}: no such file (give train:VOCAB or a tokenizer.json path)")
    return "path", path


def fingerprint(tok: Tokenizer) -> str:
    """A short hash of the vocabulary and merges, to tell whether two tokenizers encode alike."""
    import hashlib

    model = json.loads(tok.to_str())["model"]
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]
