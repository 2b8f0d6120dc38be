"""The learnability check with a real nano LM: train with the real trainer on a Recipe of the chosen books, score
with the eval suite's batched Scorer.

    lib = ingest(**manifest.ingest_kwargs(), library="lib", tokenizer="train:1024")   # once
    fit = NanoFit(manifest, "lib", "runs")
    ablation(manifest, "fact_recall", fit=fit)          # two trials: all training books, and all but the fact books

A fit is one trial folder per training set, named by the recipe id, under ``out_dir``: calling the fit again for the
same books (the 'with' model shared by several ablations, or a run killed mid-way) resumes or reuses that trial
instead of training again — the trainer's own resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bookmix.errors import BookmixError
from bookmix.storyworld.manifest import Manifest

# Why these defaults (measured on one CPU thread, see bench/storyworld_nano.py):
#  - block 32, not nano's 256: a fact book states each of its facts every few hundred tokens, so in a long window
#    the model can copy "X lives in Y" from earlier in the window and never has to store it in its weights; the
#    fact items give no context, so only stored facts score. 32 tokens (three or four sentences) leave almost
#    nothing to copy. Story items (~200 tokens of context) need the preset's block instead.
#  - micro_batch 4: memorising facts takes optimizer *steps*; at the same tokens, 4 windows a step gave ~0.9
#    accuracy on a fact-only world where 16 gave ~0.55.
#  - lr 3e-3: 1e-2 learned nothing and 1e-3 less than 3e-3 in the same steps.
#  - 2 epochs: each fact is seen ~50 times in its exact cue form; more epochs cost time for a smaller gain.
NANO_OVERRIDES: dict[str, Any] = {"block_size": 32}
NANO_TRAIN: dict[str, Any] = {"micro_batch": 4, "lr": 3e-3, "warmup": 10, "log_every": 50, "eval_windows": 16}
NANO_EPOCHS = 2


class LibraryScorer:
    """A :class:`~bookmix.storyworld.ngram.ContinuationScorer` over a trained LM: texts are tokenized with the
    library's tokenizer and scored by :class:`bookmix.evals.Scorer` exactly as the eval suite's multiple_choice task
    does (the end-of-book token as the start token, so a context begins as a document does in training)."""

    def __init__(self, lib: Any, scorer: Any) -> None:
        self.lib = lib
        self.scorer = scorer

    def logprobs(self, contexts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        if len(contexts) != len(continuations):
            raise ValueError(f"{len(contexts)} contexts but {len(continuations)} continuations")
        if not contexts:
            return np.zeros(0)
        start = np.array([self.lib.eob_id], dtype=np.int64)
        ctx = [np.concatenate([start, c.astype(np.int64)]) for c in self.lib.encode(list(contexts))]
        cont = [c.astype(np.int64) for c in self.lib.encode(list(continuations))]
        return np.asarray(self.scorer.score(ctx, cont).logprob, dtype=np.float64)


def book_ids(manifest: Manifest, lib: Any) -> dict[str, str]:
    """Storyworld file name (fact_000.txt) → library book id, for every book of the manifest.

    Matched by the source file's name together with the title, author and year the metadata sidecar gave it (the
    library's id is the hash of the *cleaned* text, which the manifest cannot know; file names alone repeat across
    storyworlds). A book missing from the library is an error naming it: the library was made from another folder.
    """
    by_key: dict[tuple, str] = {}
    for b in lib.books():
        by_key.setdefault((Path(b.source).name, b.title, b.author, b.year), b.id)
    ids: dict[str, str] = {}
    missing: list[str] = []
    for name in manifest.book_names():
        entry = manifest.book(name)
        key = (name, entry.title, entry.author, entry.year)
        if key in by_key:
            ids[name] = by_key[key]
        else:
            missing.append(name)
    if missing:
        raise BookmixError(
            f"{lib.path}: has no book from storyworld file(s) {missing[:3]}{' ...' if len(missing) > 3 else ''}; "
            f"ingest the storyworld folder ({manifest.root}) into this library"
        )
    return ids


@dataclass
class NanoFit:
    """``fit(book_names) -> LibraryScorer``: trains ``model`` on a Recipe of those storyworld books and returns a
    scorer over the trained weights. ``reads = "books"`` tells :func:`~bookmix.storyworld.learnability.ablation`
    to pass book file names, not texts."""

    manifest: Manifest
    library: str | Path
    out_dir: str | Path
    model: str = "nano"
    overrides: dict[str, Any] = field(default_factory=lambda: dict(NANO_OVERRIDES))
    """Changes to the preset's shape (the vocabulary always comes from the library)."""
    train: dict[str, Any] = field(default_factory=lambda: dict(NANO_TRAIN))
    """TrainConfig fields; ``seed`` is set from :attr:`seed`."""
    epochs: int = NANO_EPOCHS
    seed: int = 0
    """Seeds both the recipe's shuffle and the weight initialisation: the with/without pair differs only in data."""
    device: str = "cpu"
    batch_size: int = 64
    """Scorer sequences per forward: storyworld items are short, so a large batch is cheap."""
    reads: str = field(default="books", init=False)
    results: dict[str, Any] = field(default_factory=dict, init=False)
    """Recipe id → TrainResult of every trial this fit trained or reused."""

    def __post_init__(self) -> None:
        from bookmix.library import Library

        self.lib = Library.open(self.library)
        self.ids = book_ids(self.manifest, self.lib)

    def recipe(self, books: Sequence[str]):  # noqa: ANN201 - bookmix.recipes.Recipe
        from bookmix.recipes import Recipe

        unknown = [b for b in books if b not in self.ids]
        if unknown:
            raise BookmixError(f"storyworld: no book named {unknown[0]!r} in {self.manifest.root}")
        if not books:
            raise BookmixError("storyworld: a nano fit needs at least one book to train on")
        return Recipe.from_dict(
            {
                "books": [self.ids[b] for b in books],
                "epochs": self.epochs,
                "seed": self.seed,
                "meta": {"design": "storyworld-learnability", "files": sorted(books)},
            }
        )

    def __call__(self, books: Sequence[str]) -> LibraryScorer:
        from bookmix.evals import Scorer
        from bookmix.models.config import preset
        from bookmix.training.checkpoint import load_model
        from bookmix.training.config import TrainConfig
        from bookmix.trial import train_recipe

        recipe = self.recipe(books)
        cfg = preset(self.model, vocab_size=self.lib.vocab_size, **self.overrides)
        tcfg = TrainConfig.from_dict({**self.train, "seed": self.seed, "device": self.device})
        out = Path(self.out_dir) / recipe.id
        self.results[recipe.id] = train_recipe(self.library, recipe, cfg, tcfg, out, device=self.device)
        if self.results[recipe.id].status != "completed":
            raise BookmixError(f"{out}: nano training {self.results[recipe.id].status}; see {out / 'events.jsonl'}")
        model, _, _ = load_model(out, self.device)
        return LibraryScorer(self.lib, Scorer.for_model(model, device=self.device, batch_size=self.batch_size))
