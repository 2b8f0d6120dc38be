"""The window order of a recipe on synthetic stores where every token says which book and position it came from."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookmix.errors import BookmixError
from bookmix.recipes import Recipe


def _window_books(s, w):
    """Book of every window (asserting it lies inside one book) and the window's start position in that book."""
    books, pos = s.book_of(w), s.pos_of(w)
    assert (books == books[:, :1]).all(), "a window crosses a book boundary"
    assert (np.diff(pos, axis=1) == 1).all(), "a window skips tokens"
    return books[:, 0], pos[:, 0]


lens_st = st.lists(st.integers(1, 300), min_size=2, max_size=7)


@settings(max_examples=40, deadline=None)
@given(
    lens=lens_st,
    t=st.integers(2, 24),
    keep=st.sampled_from([1.0, 0.5, 0.2]),
    pattern=st.sampled_from(["prefix", "stride", "random", "contiguous_random"]),
    grain=st.sampled_from(["windows", "blocks"]),
    order=st.sampled_from(["random", "as_listed", "interleave"]),
    epochs=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_shuffling_grains_stay_inside_books_and_count_exactly(
    synth, lens, t, keep, pattern, grain, order, epochs, seed
):
    s = synth(lens)
    chunk = 2 * t
    if not any((n - 1) // t for n in lens):
        with pytest.raises(BookmixError, match="no window"):
            s.stream(Recipe.from_dict({"books": s.ids}), t)
        return
    r = Recipe.from_dict(
        {
            "books": s.ids,
            "grain": grain,
            "order": order,
            "epochs": epochs,
            "seed": seed,
            "block_windows": 3,
            "sparsity": {"keep": keep, "chunk_tokens": chunk, "pattern": pattern},
        }
    )
    st_ = s.stream(r, t)
    w = st_.windows(0, st_.n_windows)
    assert w.shape == (st_.n_windows, t + 1) and st_.total_tokens == st_.n_windows * t
    books, pos = _window_books(s, w)
    assert (pos % t == 0).all()  # windows start every T tokens of their book
    per_epoch = st_.n_windows // epochs
    first = sorted(zip(books[:per_epoch].tolist(), pos[:per_epoch].tolist(), strict=True))
    assert len(set(first)) == per_epoch  # no window twice within an epoch
    for b, n in enumerate(lens):
        n_win = (n - 1) // t
        mine = pos[:per_epoch][books[:per_epoch] == b]
        chunks = -(-n_win // 2)  # chunk_tokens = 2T -> 2 windows per chunk
        kept = max(1, min(chunks, int(keep * chunks + 0.5))) if chunks else 0
        # chunk_tokens = 2T: chunks of 2 windows; only a kept last chunk can be one window short
        assert 2 * kept - 1 <= len(mine) <= 2 * kept
        if pattern == "prefix":
            assert len(mine) == min(n_win, 2 * kept) and sorted(mine.tolist()) == [i * t for i in range(len(mine))]
    for e in range(1, epochs):  # every epoch reads the same kept set
        again = sorted(
            zip(
                books[e * per_epoch : (e + 1) * per_epoch].tolist(),
                pos[e * per_epoch : (e + 1) * per_epoch].tolist(),
                strict=True,
            )
        )
        assert again == first
    if order == "interleave":  # round robin: block j of every book before block j+1 of any
        blk = 3 if grain == "blocks" else 1
        rank = [
            sorted(set(pos[books == b].tolist())).index(p) // blk
            for b, p in zip(books[:per_epoch], pos[:per_epoch], strict=True)
        ]
        assert rank == sorted(rank)
    elif grain == "blocks":  # each block (3 consecutive kept windows of one book) is read as one run, in order
        ep_books, ep_pos = books[:per_epoch], pos[:per_epoch]
        rank = [sorted(set(ep_pos[ep_books == b].tolist())).index(p) for b, p in zip(ep_books, ep_pos, strict=True)]
        where: dict[tuple[int, int], list[int]] = {}
        for i, (b, k) in enumerate(zip(ep_books.tolist(), rank, strict=True)):
            where.setdefault((b, k // 3), []).append(i)
        for (b, blk), idx in where.items():
            assert idx == list(range(idx[0], idx[0] + len(idx))), (b, blk)
            assert [rank[i] for i in idx] == sorted(rank[i] for i in idx)


def test_determinism_seed_and_reshuffle(synth):
    s = synth([200, 150, 90, 300])
    r = Recipe.from_dict({"books": s.ids, "epochs": 2, "seed": 3})
    a, b = s.stream(r, 8), s.stream(Recipe.from_dict(r.to_dict()), 8)
    assert np.array_equal(a.window_index(), b.window_index())
    assert np.array_equal(a.windows(0, a.n_windows), b.windows(0, b.n_windows))
    other = s.stream(r.with_changes(seed=4), 8)
    assert not np.array_equal(a.window_index(), other.window_index())
    half = a.n_windows // 2
    assert not np.array_equal(a.window_index()[:half], a.window_index()[half:])  # reshuffled epoch
    same = s.stream(r.with_changes(reshuffle=False), 8)
    assert np.array_equal(same.window_index()[:half], same.window_index()[half:])


def test_phases_run_in_order_each_epoch(synth):
    s = synth([120, 80, 200, 60, 90])
    r = Recipe.from_dict({"phases": [{"books": s.ids[:2]}, {"books": s.ids[2:]}], "epochs": 2, "seed": 1})
    st_ = s.stream(r, 10)
    books, _ = _window_books(s, st_.windows(0, st_.n_windows))
    p0, p1 = st_.plan.phase_windows[0]
    for e in range(2):
        epoch = books[e * (p0 + p1) : (e + 1) * (p0 + p1)]
        assert set(epoch[:p0].tolist()) == {0, 1} and set(epoch[p0:].tolist()) == {2, 3, 4}


def test_books_grain_reads_books_in_sequence_with_eob_between(synth):
    lens = [50, 33, 80, 10, 41]
    s = synth(lens, year=[1900, 1850, np.nan, 1870, 1990])
    t = 8
    for order, expect in [
        ("length_asc", [3, 1, 4, 0, 2]),
        ("year_desc", [4, 0, 3, 1, 2]),
        ("as_listed", [2, 0, 1, 4, 3]),
    ]:
        books = [s.ids[i] for i in ([2, 0, 1, 4, 3] if order == "as_listed" else range(5))]
        st_ = s.stream(Recipe.from_dict({"books": books, "grain": "books", "order": order}), t)
        w = st_.windows(0, st_.n_windows)
        flat = np.concatenate([w[0], w[1:, 1:].ravel()])  # undo the one-token overlap
        text = np.concatenate([np.r_[np.arange(n) + (b + 1) * 100_000, 0] for b, n in ((b, lens[b]) for b in expect)])
        assert st_.n_windows == (len(text) - 1) // t
        assert np.array_equal(flat, text[: len(flat)])
        assert (w == 0).any(axis=1).sum() >= 4  # windows crossing a boundary hold the end-of-book token


def test_books_grain_with_sparsity_keeps_chunks_in_book_order(synth):
    s = synth([400, 400])
    r = Recipe.from_dict(
        {
            "books": s.ids,
            "grain": "books",
            "order": "as_listed",
            "sparsity": {"keep": 0.25, "chunk_tokens": 20, "pattern": "stride"},
        }
    )
    st_ = s.stream(r, 16)
    w = st_.windows(0, st_.n_windows)
    flat = np.concatenate([w[0], w[1:, 1:].ravel()])
    b0 = flat[s.book_of(flat) == 0]
    assert np.array_equal(s.pos_of(b0), np.concatenate([np.arange(c * 20, c * 20 + 20) for c in range(0, 20, 4)]))


def test_holdout_unknown_and_too_short(synth):
    s = synth([100, 100, 100], holdout=[1])
    with pytest.raises(BookmixError, match=f"book '{s.ids[1]}' is a holdout book"):
        s.stream(Recipe.from_dict({"books": s.ids}), 8)
    with pytest.raises(BookmixError, match="book 'ffffffffffffffff' is not in the library"):
        s.stream(Recipe.from_dict({"books": [s.ids[0], "f" * 16]}), 8)
    with pytest.raises(BookmixError, match="no window of 129 tokens"):
        s.stream(Recipe.from_dict({"books": [s.ids[0]]}), 128)


def test_windows_by_range_match_the_whole_and_batches(synth):
    s = synth([500, 300, 700, 250])  # books on two shards: gathers mix sources
    st_ = s.stream(Recipe.from_dict({"books": s.ids, "epochs": 2}), 16)
    full = st_.windows(0, st_.n_windows)
    assert np.array_equal(st_.windows(7, 20), full[7:20])
    assert np.array_equal(np.concatenate([b for _, b in st_.batches(5)]), full)
    assert st_.windows(3, 3).shape == (0, 17)
    with pytest.raises(IndexError):
        st_.windows(0, st_.n_windows + 1)


@settings(max_examples=30, deadline=None)
@given(
    lens=lens_st,
    t=st.integers(2, 16),
    keep=st.sampled_from([1.0, 0.6, 0.3]),
    pattern=st.sampled_from(["prefix", "stride", "random", "contiguous_random"]),
    split=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
def test_books_grain_phases_and_sparsity(synth, lens, t, keep, pattern, split, seed):
    from bookmix.recipes.sparsity import book_rng, kept_chunks

    s = synth(lens)
    split = min(split, len(lens) - 1)
    r = Recipe.from_dict(
        {
            "phases": [{"books": s.ids[:split], "order": "random"}, {"books": s.ids[split:], "order": "length_desc"}],
            "grain": "books",
            "seed": seed,
            "sparsity": {"keep": keep, "chunk_tokens": 7, "pattern": pattern},
        }
    )
    kept_len = {}
    for b, n in enumerate(lens):
        chunks = kept_chunks(-(-n // 7), r.sparsity, book_rng(seed, s.ids[b]))
        kept_len[b] = int(np.minimum(chunks * 7 + 7, n).sum() - (chunks * 7).sum())
    total = sum(kept_len.values()) + len(lens)  # one end-of-book token per book
    if total - 1 < t:
        return
    st_ = s.stream(r, t)
    assert st_.n_windows == (total - 1) // t
    w = st_.windows(0, st_.n_windows)
    flat = np.concatenate([w[0], w[1:, 1:].ravel()])
    books = s.book_of(flat)
    seq = [int(b) for i, b in enumerate(books) if b >= 0 and (i == 0 or books[i - 1] != b)]
    assert len(seq) == len(set(seq))  # every book read once, in one piece
    assert all(b < split for b in seq[:split])  # phase 0 first (the end of the stream may be cut short)
    tail = seq[split:]
    assert all(b >= split for b in tail) and tail == sorted(tail, key=lambda b: (-lens[b], b))  # then longest first
    for b in set(books[books >= 0].tolist()):
        mine = s.pos_of(flat[books == b])
        assert (np.diff(mine) > 0).all()  # kept chunks in book order
        if b != seq[-1]:
            assert len(mine) == kept_len[b]
