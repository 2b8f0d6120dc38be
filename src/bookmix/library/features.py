"""Per-book features later stages order and design by: word length, vocabulary richness, readability, entropy.

Text features are measured on a fixed-size sample spread over the book, which keeps them cheap and comparable
between a novella and a 3-volume novel (a type-token ratio over a whole book mostly measures its length).
The unigram entropy is measured on all of the book's tokens with one ``bincount``.
"""

from __future__ import annotations

import re

import numpy as np

SAMPLE_CHARS = 60_000  # ~10k words: three slices of 20k chars from the start, middle and end
TTR_WORDS = 5_000  # the type-token ratio is taken over this many words, so books of any length compare

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE_END = re.compile(r"[.!?…]+")
_VOWELS = re.compile(r"[aeiouyàâäéèêëîïôöùûüÿæœáíóúаеёиоуыэюя]+", re.I)


def _sample(text: str) -> str:
    if len(text) <= SAMPLE_CHARS:
        return text
    k = SAMPLE_CHARS // 3
    mid = len(text) // 2
    return "\n".join((text[:k], text[mid : mid + k], text[-k:]))


def text_features(text: str, tokens: np.ndarray, vocab_size: int) -> dict[str, float]:
    sample = _sample(text)
    words = _WORD.findall(sample)
    n_words = max(len(words), 1)
    mean_word_len = sum(map(len, words)) / n_words
    head = [w.lower() for w in words[:TTR_WORDS]]
    ttr = len(set(head)) / max(len(head), 1)
    readability, difficulty = flesch(sample, words)
    return {
        "mean_word_len": round(mean_word_len, 4),
        "ttr": round(ttr, 4),
        "readability": round(readability, 3),
        "entropy": round(token_entropy(tokens, vocab_size), 4),
        "difficulty": round(difficulty, 3),
    }


def flesch(text: str, words: list[str] | None = None) -> tuple[float, float]:
    """(Flesch reading ease: higher = easier, Flesch-Kincaid grade: higher = harder), from the same counts."""
    words = _WORD.findall(text) if words is None else words
    n_words = max(len(words), 1)
    sentences = max(len(_SENTENCE_END.findall(text)), 1)
    syllables = max(len(_VOWELS.findall(text)), n_words)  # every word has at least one syllable
    words_per_sentence = n_words / sentences
    syllables_per_word = syllables / n_words
    return (
        206.835 - 1.015 * words_per_sentence - 84.6 * syllables_per_word,
        0.39 * words_per_sentence + 11.8 * syllables_per_word - 15.59,
    )


def token_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Unigram entropy of the book's token ids in bits per token."""
    if len(tokens) == 0:
        return 0.0
    counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)
    p = counts[counts > 0] / len(tokens)
    return float(-(p * np.log2(p)).sum()) if len(p) > 1 else 0.0
