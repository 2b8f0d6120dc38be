"""Per-book quality signals from windows spread over the whole book, stored as catalog columns; resumable.

Judging a book by its opening misleads (front matter, a preface, a table of contents; web-scale quality classifiers
see the first ~1,000 characters of a document), so every signal reads ``windows`` equal windows whose starts are
evenly spaced from the book's first token to its last (:func:`window_starts`; a book shorter than the windows
together is read whole). Columns (REAL, NULL until scored):

- ``q_ocr``     share of words that look garbled by OCR: a digit against a letter, a stray sign between letters,
                a capital after a small letter, Latin and Cyrillic in one word, a word broken by a hyphen at a line
                end. Without a dictionary, a letter read as another letter ("c" for "e") is not seen: the signal
                ranks books by damage, it does not count every error.
- ``q_repeat``  share of the windows' token 10-grams that occur more than once among them (boilerplate, running
                heads, looping scans).
- ``q_lang``    share of windows whose language guess is the book's catalog language (its majority guess when the
                catalog has none): low for mixed-language volumes or garbage.
- ``q_read``    Flesch reading ease of the windows' text (higher = easier), the formula of ``features.py``.
- ``q_ppl``, ``q_bpb``  perplexity per token and bits per byte of the windows under a reference model (a bookmix
                checkpoint or a Hugging Face causal LM, see ``bookmix.evals.reference``); bits per byte compare across
                tokenizers. Only when a reference is given.

Length is the catalog's ``tokens`` / ``chars``. Units of ``UNIT_BOOKS`` books run in this process, a process pool or
Ray tasks (``parallel.run_units``); the driver commits each unit's rows, so a kill loses at most the units in flight
and a re-run scores only books whose columns are still NULL.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from bookmix.errors import BookmixError
from bookmix.library import catalog
from bookmix.library.features import flesch
from bookmix.library.langdetect import detect
from bookmix.library.parallel import run_units

WINDOWS = 16  # windows per book for the text signals: 4k tokens, about 3k words, read at 16 places (a few ms)
WINDOW_TOKENS = 256
REPEAT_N = 10
UNIT_BOOKS = 32
TEXT_SIGNALS = ("q_ocr", "q_repeat", "q_lang", "q_read")
MODEL_SIGNALS = ("q_ppl", "q_bpb")


class Reference(Protocol):
    """A reference language model: summed loss (nats), predicted tokens and bytes of text over some windows."""

    name: str
    block_size: int

    def loss(self, windows: Sequence[np.ndarray], texts: Sequence[str]) -> tuple[float, int, int]: ...


@dataclass
class ScoreReport:
    books: int = 0
    scored: int = 0  # books scored by this run (the others were already)
    reference: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- windows --------------------------------------------------------------------------------------------------------
def window_starts(n_tokens: int, windows: int, size: int) -> np.ndarray:
    """Starts of ``windows`` windows of ``size`` tokens, evenly spaced so the first starts at 0 and the last ends at
    ``n_tokens``; a book of at most ``windows * size`` tokens is cut into consecutive windows that tile it."""
    if n_tokens <= 0:
        return np.zeros(0, np.int64)
    if n_tokens <= windows * size:
        return np.arange(0, n_tokens, size, dtype=np.int64)
    return np.round(np.linspace(0, n_tokens - size, windows)).astype(np.int64)


def read_windows(tokens: np.ndarray, windows: int, size: int) -> list[np.ndarray]:
    return [np.asarray(tokens[s : s + size]) for s in window_starts(len(tokens), windows, size).tolist()]


# -- text signals ---------------------------------------------------------------------------------------------------
_L = r"[^\W\d_]"  # a letter
# Signs of OCR damage inside a word; a word counts once whatever the number of signs in it.
_GARBLED = re.compile(
    rf"\d{_L}|{_L}\d"  # a digit against a letter: "l1ke", "0f"
    rf"|{_L}[|\\/^~`{{}}<>@#$%&*=+¬¦§©®°±µ¶•¤]+{_L}"  # a stray sign between letters: "w|th", "th~e"
    r"|[a-zа-яё][A-ZА-ЯЁ]"  # a capital after a small letter: "tHe"
    r"|[a-zA-Z][а-яА-ЯёЁ]|[а-яА-ЯёЁ][a-zA-Z]"  # Latin and Cyrillic letters in one word
    rf"|{_L}-\n{_L}"  # a word broken by a hyphen at a line end
)
_SPACE = re.compile(r"\s")


def ocr_noise(text: str) -> float:
    """Share of the words that show a sign of OCR damage (signs are rare in clean text: one scan, then a look back
    from each sign to the start of its word)."""
    n = len(text.split())
    if not n:
        return 0.0
    words = set()
    for m in _GARBLED.finditer(text):
        head = text[max(0, m.start() - 64) : m.start()]
        cut = [k.end() for k in _SPACE.finditer(head)]
        words.add(m.start() - len(head) + (cut[-1] if cut else 0))
    return len(words) / n


def repetition(windows: Sequence[np.ndarray], n: int = REPEAT_N) -> float:
    """Share of the windows' token n-grams (none crossing a window edge) that occur more than once among them."""
    hashes = []
    base = np.uint64(1_000_003)
    for w in windows:
        t = np.asarray(w, dtype=np.uint64)
        if len(t) < n:
            continue
        m = len(t) - n + 1
        h = np.zeros(m, np.uint64)
        with np.errstate(over="ignore"):
            for j in range(n):
                h = h * base + t[j : j + m] + np.uint64(1)
        hashes.append(h)
    if not hashes:
        return 0.0
    h = np.concatenate(hashes)
    _, counts = np.unique(h, return_counts=True)
    return float(counts[counts > 1].sum() / len(h))


def lang_confidence(texts: Sequence[str], lang: str) -> float:
    guesses = [detect(t) for t in texts]
    if not guesses:
        return 0.0
    if not lang:
        named = [g for g in guesses if g]
        lang = max(set(named), key=named.count) if named else ""
    return sum(g == lang and g != "" for g in guesses) / len(guesses)


def text_signals(windows: Sequence[np.ndarray], texts: Sequence[str], lang: str) -> dict[str, float]:
    joined = "\n".join(texts)
    return {
        "q_ocr": round(ocr_noise(joined), 5),
        "q_repeat": round(repetition(windows), 5),
        "q_lang": round(lang_confidence(texts, lang), 4),
        "q_read": round(flesch(joined)[0], 3),
    }


# -- the worker -----------------------------------------------------------------------------------------------------
_REFERENCES: dict[str, Reference] = {}


def _reference(factory: Callable[[], Reference] | None) -> Reference | None:
    if factory is None:
        return None
    key = repr(factory)  # one model per worker process, whichever unit first needs it
    if key not in _REFERENCES:
        _REFERENCES[key] = factory()
    return _REFERENCES[key]


def score_book(lib, book_id: str, lang: str, windows: int, size: int, reference: Reference | None) -> dict[str, float]:
    tokens = lib.tokens(book_id)
    parts = read_windows(tokens, windows, size)
    out = text_signals(parts, _decode(lib, parts), lang)
    if reference is not None:
        ref_parts = read_windows(tokens, windows, reference.block_size)
        nats, n, nbytes = reference.loss(ref_parts, _decode(lib, ref_parts))
        out["q_ppl"] = round(float(np.exp(nats / max(n, 1))), 4)
        out["q_bpb"] = round(nats / np.log(2) / max(nbytes, 1), 5)
    return out


def _decode(lib, parts: Sequence[np.ndarray]) -> list[str]:
    return lib.tokenizer.decode_batch(
        [np.asarray(p, dtype=np.int64).tolist() for p in parts], skip_special_tokens=False
    )


def _score_unit(unit) -> list[tuple[str, dict[str, float]]]:
    from bookmix.library.library import Library

    path, rows, windows, size, factory = unit
    ref = _reference(factory)
    with Library.open(path) as lib:
        return [(b, score_book(lib, b, lang, windows, size, ref)) for b, lang in rows]


# -- the pass -------------------------------------------------------------------------------------------------------
def score(
    lib,
    *,
    reference: Callable[[], Reference] | None = None,
    reference_name: str | None = None,
    rescore: bool = False,
    windows: int = WINDOWS,
    window_tokens: int = WINDOW_TOKENS,
    where: str | None = None,
    workers: int = 1,
    executor: str = "local",
    address: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ScoreReport:
    """Score every book (matching ``where``) whose signals are still NULL; ``reference`` is a picklable factory of a
    :class:`Reference` (built once per worker) named ``reference_name`` in the catalog's meta. ``rescore`` clears
    the columns first (a new reference model, or other windows)."""
    if windows < 1 or window_tokens < 16:
        raise BookmixError(
            f"--windows/--window-tokens: need ≥ 1 window of ≥ 16 tokens, got {windows} × {window_tokens}"
        )
    t0 = time.perf_counter()
    con = lib.con
    cols = TEXT_SIGNALS + (MODEL_SIGNALS if reference is not None else ())
    for c in cols:
        catalog.ensure_column(con, c, "REAL")
    meta = catalog.get_meta(con)
    settings = {"windows": windows, "window_tokens": window_tokens}
    if reference is not None:
        name = reference_name or repr(reference)
        old = meta.get("score_reference")
        if old not in (None, name) and not rescore:
            raise BookmixError(
                f"--model {name}: this library was scored with {old}; pass --rescore to score every book again with the new one"
            )
        settings["reference"] = name
    for key in ("windows", "window_tokens"):  # books scored on other windows would not compare with the rest
        old = meta.get(f"score_{key}")
        if old not in (None, settings[key]) and not rescore:
            raise BookmixError(
                f"--{key.replace('_', '-')} {settings[key]}: this library was scored with {old}; pass --rescore to "
                "score every book again"
            )
    if rescore:
        con.execute("BEGIN IMMEDIATE")
        con.execute(f"UPDATE books SET {', '.join(f'{c} = NULL' for c in cols)}")
        con.execute("COMMIT")
    catalog.set_meta(con, **{f"score_{k}": v for k, v in settings.items()})
    pending = " OR ".join(f"{c} IS NULL" for c in cols)
    clause = f"({pending})" + (f" AND ({where})" if where else "")
    todo = catalog.query(con, f"SELECT id, lang FROM books WHERE {clause} ORDER BY id", where=where)
    total = lib.count(where=where)
    report = ScoreReport(books=total, reference=settings.get("reference"))
    units = [
        (str(lib.path), todo[i : i + UNIT_BOOKS], windows, window_tokens, reference)
        for i in range(0, len(todo), UNIT_BOOKS)
    ]
    done = total - len(todo)
    if progress is not None:
        progress(done, total)
    assign = ", ".join(f"{c} = ?" for c in cols)
    for _, rows in run_units(_score_unit, units, executor=executor, workers=workers, address=address):
        con.execute("BEGIN IMMEDIATE")
        con.executemany(f"UPDATE books SET {assign} WHERE id = ?", [(*(s[c] for c in cols), b) for b, s in rows])
        con.execute("COMMIT")
        report.scored += len(rows)
        done += len(rows)
        if progress is not None:
            progress(done, total)
    report.seconds = time.perf_counter() - t0
    return report
