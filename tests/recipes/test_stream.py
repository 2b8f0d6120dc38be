"""Recipe streams over a real library: exact tokens, export and exact rebuild, errors naming the book."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bookmix.errors import BookmixError
from bookmix.recipes import Recipe, RecipeStream, WindowSource


def test_windows_are_the_books_tokens(small_lib, train_ids):
    r = Recipe.from_dict({"books": train_ids[:4], "seed": 5})
    s = r.stream(small_lib, 32)
    assert isinstance(s, WindowSource)
    w = s.windows(0, s.n_windows)
    books = {b: np.asarray(small_lib.tokens(b)) for b in train_ids[:4]}
    expected = sum((len(t) - 1) // 32 for t in books.values())
    assert s.n_windows == expected and s.total_tokens == expected * 32
    # every window is one stretch of one book, and every stretch of every book appears once
    seen = set()
    for row in w:
        hits = [
            (b, off)
            for b, t in books.items()
            for off in range(0, len(t) - 32, 32)
            if np.array_equal(t[off : off + 33], row)
        ]
        assert hits
        seen.add(hits[0])
    assert len(seen) == expected


def test_books_grain_stream_uses_the_librarys_end_of_book(small_lib, train_ids):
    r = Recipe.from_dict({"books": train_ids[:3], "grain": "books", "order": "as_listed"})
    s = r.stream(small_lib, 64)
    w = s.windows(0, s.n_windows)
    flat = np.concatenate([w[0], w[1:, 1:].ravel()])
    text = np.concatenate([np.r_[np.asarray(small_lib.tokens(b)), small_lib.eob_id] for b in train_ids[:3]])
    assert np.array_equal(flat, text[: len(flat)]) and (flat == small_lib.eob_id).sum() >= 2


@pytest.mark.parametrize("grain", ["windows", "books"])
def test_exported_window_order_rebuilds_the_identical_stream(small_lib, train_ids, tmp_path, grain):
    extra = (
        {"order": "random", "epochs": 2}
        if grain == "books"
        else {"sparsity": {"keep": 0.5, "chunk_tokens": 64, "pattern": "random"}}
    )
    r = Recipe.from_dict({"books": train_ids, "grain": grain, "seed": 9, **extra})
    s = r.stream(small_lib, 16)
    s.export(tmp_path / "w.npz")
    again = RecipeStream.from_export(small_lib, tmp_path / "w.npz")
    assert again.n_windows == s.n_windows and np.array_equal(
        again.windows(0, again.n_windows), s.windows(0, s.n_windows)
    )
    s.export(tmp_path / "w.tsv")
    rows = np.loadtxt(tmp_path / "w.tsv", dtype=np.int64, skiprows=1, ndmin=2)
    assert np.array_equal(rows[:, 1:], s.window_index()) and np.array_equal(rows[:, 0], np.arange(s.n_windows))


def test_holdout_and_unknown_books_are_named(small_lib, train_ids, holdout_ids):
    with pytest.raises(BookmixError, match=f"book '{holdout_ids[0]}' is a holdout book"):
        Recipe.from_dict({"books": [train_ids[0], holdout_ids[0]]}).stream(small_lib, 16)
    with pytest.raises(BookmixError, match="book '0123456789abcdef' is not in the library"):
        Recipe.from_dict({"books": [train_ids[0], "0123456789abcdef"]}).stream(small_lib, 16)


def test_to_torch_places_the_whole_set(small_lib, train_ids):
    s = Recipe.from_dict({"books": train_ids[:2]}).stream(small_lib, 16)
    t = s.to_torch("cpu")
    assert t.dtype == torch.int64 and t.shape == (s.n_windows, 17)
    assert np.array_equal(t[3:5].numpy(), s.windows(3, 5))
