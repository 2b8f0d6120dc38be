"""Storyworld: synthetic books with planted, known signal — for tests, the offline demo, and validating the analysis.

    from bookmix.storyworld import generate, Manifest
    manifest = generate("sw", books=20, seed=0)          # writes books, metadata.csv, items, chat, manifest.json
    manifest.groups["fact_recall/fact_000"].helps        # ['fact_000.txt']
    manifest = Manifest.load("sw")
    ablation(manifest, "fact_recall")                    # learnability: n-gram with vs without the helpful books
    ablation(manifest, "fact_recall", fit=NanoFit(manifest, "lib", "runs"))   # the same with a trained nano LM

See ``generate.py`` for the folder layout and ``items.py`` for the item groups.
"""

from bookmix.storyworld.generate import build, generate
from bookmix.storyworld.items import Item
from bookmix.storyworld.learnability import Effect, ablation
from bookmix.storyworld.manifest import BookEntry, GroupEntry, Manifest
from bookmix.storyworld.nano import LibraryScorer, NanoFit
from bookmix.storyworld.ngram import ContinuationScorer, NGramScorer
from bookmix.storyworld.settings import DEFAULT_MIX, KINDS, GeneratorSettings

__all__ = [
    "DEFAULT_MIX",
    "KINDS",
    "BookEntry",
    "ContinuationScorer",
    "Effect",
    "GeneratorSettings",
    "GroupEntry",
    "Item",
    "LibraryScorer",
    "Manifest",
    "NanoFit",
    "NGramScorer",
    "ablation",
    "build",
    "generate",
]
