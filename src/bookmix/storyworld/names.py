"""Invented, pronounceable names from seeded syllables.

A small closed set of syllables keeps the vocabulary tiny (a BPE tokenizer learns each name as one to three pieces),
and invented names guarantee that nothing a model knows from elsewhere helps or hurts: all signal is planted.
"""

from __future__ import annotations

import numpy as np

ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "st",
    "t",
    "th",
    "v",
    "z",
    "qu",
    "sh",
)
VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ei")
CODAS = ("", "", "n", "r", "l", "s", "m", "th", "k")  # open syllables twice as likely: easier to say

# Invented names must never be ordinary English words the templates use: a name "the" or "in" would break parsing.
RESERVED = {"a", "an", "the", "in", "is", "of", "to", "and", "so", "can", "was", "are", "he", "she", "it", "on", "at"}


def make_names(
    rng: np.random.Generator, n: int, syllables: tuple[int, int] = (2, 3), taken: set[str] | None = None,
    alphabet: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None,
    reserved: frozenset[str] | set[str] | None = None,
) -> list[str]:
    """``n`` distinct lowercase names of ``syllables`` syllables each, avoiding ``taken`` (which is updated).

    ``alphabet`` (onsets, vowels, codas) and ``reserved`` default to the English ones above."""
    taken = set() if taken is None else taken
    onsets, vowels, codas = alphabet or (ONSETS, VOWELS, CODAS)
    reserved = RESERVED if reserved is None else reserved
    names: list[str] = []
    attempts = 0
    while len(names) < n:
        attempts += 1
        if attempts > 1000 * (n + 10):  # the syllable space holds ~10^6 names; hitting this means a bug, not bad luck
            raise RuntimeError(f"could not invent {n} distinct names")
        k = int(rng.integers(syllables[0], syllables[1] + 1))
        parts = [onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] for _ in range(k)]
        name = "".join(parts) + codas[rng.integers(len(codas))]
        if name in taken or name in reserved:
            continue
        taken.add(name)
        names.append(name)
    return names


def cap(name: str) -> str:
    return name[:1].upper() + name[1:]
