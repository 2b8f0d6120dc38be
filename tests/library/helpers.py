"""Text generators for the library tests: varied, deterministic prose (no book text is committed)."""

from __future__ import annotations

import random

_EN = (
    "the old captain walked along the harbour wall and watched ships come in while gulls cried over grey water "
    "she said nothing but her eyes were bright with a question he could not answer before evening fell"
)
_RU = (
    "старый капитан шёл вдоль стены гавани и смотрел как входят корабли пока чайки кричали над серой водой "
    "она ничего не сказала но её глаза светились вопросом на который он не мог ответить до вечера"
)
EN_WORDS = tuple(_EN.split())
RU_WORDS = tuple(_RU.split())


def prose(seed: int, paragraphs: int = 20, words: tuple[str, ...] | None = None) -> str:
    rng = random.Random(seed)
    vocab = words or EN_WORDS
    paras = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(2, 5)):
            s = " ".join(rng.choice(vocab) for _ in range(rng.randint(5, 14)))
            sentences.append(s[0].upper() + s[1:] + rng.choice(".!?."))
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)
