"""Entity-recall items (LAMBADA-like) from held-out text: predict a name that appeared earlier in the context but not
in its last sentence, so the model must reach back past the local sentence to get it.

Names are found cheaply and without a tagger, in any language with capital letters (English, Russian, ...): a
capitalised word right after a word or a comma (so not at a sentence start), seen at least ``min_count`` times that
way, and at least twice as often capitalised as in lower case (so "The" after a comma or a capitalised common
noun is not taken for a name), and not nearly always followed by a full stop (titles: "Mr.", "Mrs."). The regular expressions run in C over the whole book; Python only loops over the few chosen items.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

# A capitalised word preceded by a word character or , ; : and one space: certainly not the start of a sentence.
_UPPER = "A-ZÀ-ÖØ-ÞĀ-ſА-ЯЁ"
MID_SENTENCE_CAP = re.compile(rf"(?<=[\w,;:] )[{_UPPER}][^\W\d_]+")
ABBREVIATION = re.compile(rf"(?<=[\w,;:] )[{_UPPER}][^\W\d_]+\.")
WORD = re.compile(r"[^\W\d_]+")
SENTENCE_END = re.compile(r"[.!?…]")


def find_names(text: str, min_count: int = 3) -> set[str]:
    """Words used as names in ``text``: capitalised mid-sentence at least ``min_count`` times, rarely lower case."""
    caps = Counter(MID_SENTENCE_CAP.findall(text))
    candidates = {w for w, c in caps.items() if c >= min_count and not w.isupper()}
    if not candidates:
        return set()
    lower = Counter(w for w in WORD.findall(text) if w.islower())
    dotted = Counter(m.group()[:-1] for m in ABBREVIATION.finditer(text))
    # Titles like "Mr." and "Mrs." are nearly always followed by a full stop; a name only at a sentence's end.
    return {w for w in candidates if lower.get(w.lower(), 0) * 2 < caps[w] and dotted.get(w, 0) < 0.8 * caps[w]}


def build_entity_items(
    text: str, names: set[str], n_items: int, context_chars: int, rng: np.random.Generator, min_gap_chars: int = 0
) -> list[dict]:
    """Up to ``n_items`` items ``{"context", "target", "distance"}`` from one text.

    ``target`` is the name with its leading space (the context ends just before it); ``distance`` is how many
    characters back the nearest earlier mention is. Occurrences are tried in a seeded random order.
    """
    if not names:
        return []
    occurrences = [m for m in MID_SENTENCE_CAP.finditer(text) if m.group() in names and m.start() > context_chars]
    items: list[dict] = []
    for j in rng.permutation(len(occurrences)):  # stops after n_items successes
        m = occurrences[int(j)]
        name, q = m.group(), m.start()
        window = text[q - context_chars : q - 1]  # the context ends before the space that precedes the name
        cut = window.find(" ")  # start on a word boundary
        context = window[cut + 1 :] if cut >= 0 else window
        ends = [e.end() for e in SENTENCE_END.finditer(context)]
        if not ends:
            continue
        last = context[ends[-1] :]
        mention = re.compile(rf"(?<![^\W\d_]){re.escape(name)}(?![^\W\d_])")
        if mention.search(last) or len(WORD.findall(last)) < 3:
            continue
        earlier = [e.start() for e in mention.finditer(context[: ends[-1]])]
        if not earlier:
            continue
        distance = len(context) - earlier[-1]
        if distance < min_gap_chars:
            continue
        items.append({"context": context, "target": " " + name, "distance": distance})
        if len(items) >= n_items:
            break
    return items
