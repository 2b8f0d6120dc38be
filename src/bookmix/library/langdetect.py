"""A cheap language guess for books that declare none: script first, then common-word counts (en/ru/de/fr).

Enough to tell the languages of a typical library apart; returns '' when the text gives no clear answer.
"""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(r"[^\W\d_]+")
_CYRILLIC = re.compile("[\u0400-\u04ff]+")
# Short, very frequent function words that rarely occur in the other languages' texts.
_STOPWORDS = {
    "en": {"the", "and", "of", "to", "was", "he", "that", "his", "with", "which", "you", "it"},
    "de": {"der", "die", "und", "das", "nicht", "ist", "ich", "sie", "mit", "ein", "auf", "sich"},
    "fr": {"le", "la", "et", "les", "des", "est", "une", "que", "dans", "qui", "pas", "il"},
    "ru": {"и", "в", "не", "на", "что", "он", "с", "как", "я", "его", "она", "но"},
    "es": {"el", "los", "del", "que", "y", "por", "con", "una", "las", "se", "su", "es"},
}
SAMPLE_CHARS = 20_000  # a few pages are plenty; the guess must stay cheap beside tokenization


def detect(text: str) -> str:
    sample = text[:SAMPLE_CHARS] if len(text) <= 3 * SAMPLE_CHARS else _spread(text)
    n_letters = sum(map(str.isalpha, sample))  # C-level loops: a detect runs per scored window, not just per book
    if n_letters < 50:
        return ""
    cyrillic = sum(map(str.isalpha, "".join(_CYRILLIC.findall(sample)))) / n_letters
    if cyrillic > 0.5:
        return "ru"
    words = Counter(w.lower() for w in _WORD.findall(sample))
    scores = {lang: sum(words[w] for w in sw) for lang, sw in _STOPWORDS.items() if lang != "ru"}
    best = max(scores, key=scores.__getitem__)
    total = sum(words.values())
    # A language's function words make up 15-30% of running text; below a few percent it is none of these.
    return best if total and scores[best] / total > 0.04 else ""


def _spread(text: str) -> str:
    """Three slices (start, middle, end) so front matter does not decide the language."""
    k = SAMPLE_CHARS // 3
    mid = len(text) // 2
    return "\n".join((text[:k], text[mid : mid + k], text[-k:]))
