"""Per-book quality signals: windows span the whole book, signals see what they should, scoring resumes after a kill,
the reference-model perplexity (bookmix checkpoint and its Hugging Face export) ranks a model's own book first, and
`library select --top` gives the same books after a kill and a re-run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bookmix.library import Library
from bookmix.library.score import ocr_noise, read_windows, repetition, score, window_starts
from bookmix.library.select import select_top
from support.library import make_library
from support.library import ocr_noise as make_ocr_noise

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize("n", [1, 100, 511, 512, 8192, 8193, 10_000, 250_000, 3_000_001])
def test_windows_cover_the_whole_book(n: int) -> None:
    windows, size = 16, 512
    starts = window_starts(n, windows, size)
    assert starts[0] == 0 and len(starts) <= windows
    ends = np.minimum(starts + size, n)
    assert ends[-1] == n  # the last window reaches the book's last token
    if n <= windows * size:  # short: consecutive windows tile the book
        assert (starts[1:] == ends[:-1]).all()
    else:  # long: evenly spaced from start to end, none overlapping
        gaps = np.diff(starts)
        assert len(starts) == windows and gaps.max() - gaps.min() <= 1 and gaps.min() >= size
    parts = read_windows(np.arange(n), windows, size)
    assert sum(map(len, parts)) == min(n, windows * size)


def _prose(seed: int, words: int) -> str:
    rng = np.random.default_rng(seed)
    vocab = ["the", "sea", "was", "calm", "and", "she", "walked", "along", "shore", "with", "her", "old", "dog",
             "under", "grey", "sky", "while", "gulls", "cried", "above", "harbour", "boats", "rocked"]  # fmt: skip
    out = []
    for _ in range(words // 8):
        out.append(" ".join(rng.choice(vocab, 8)).capitalize() + ".")
    return " ".join(out)


def test_signals_read_the_end_of_a_book_as_well_as_its_start(tmp_path) -> None:
    clean_text = _prose(0, 40_000)
    words = clean_text.split(" ")
    cut = int(len(words) * 0.9)
    noisy_end = " ".join(words[:cut]) + " " + make_ocr_noise(" ".join(words[cut:]), 0.5, seed=1)
    looping = " ".join(words[: len(words) // 2]) + " " + " ".join(words[:200] * ((len(words) // 2) // 200))
    lib = make_library(
        tmp_path, {"clean": clean_text, "noisy_end": noisy_end, "looping": looping}, vocab_size=400, lang="en"
    )
    report = score(lib, windows=16, window_tokens=256)
    assert report.scored == 3
    q = {b.title: b.extra for b in lib.books()}
    assert q["clean"]["q_ocr"] < 0.002 and q["noisy_end"]["q_ocr"] > 0.01  # the noise is only in the last tenth
    assert q["looping"]["q_repeat"] > 0.3 > 0.05 > q["clean"]["q_repeat"]
    assert q["clean"]["q_lang"] == 1.0 and q["clean"]["q_read"] > 50
    assert ocr_noise("Tbe qu1ck brown fox, jumped.") == pytest.approx(1 / 5)
    assert repetition([np.arange(40), np.arange(40)]) == 1.0
    from bookmix.errors import BookmixError

    with pytest.raises(BookmixError, match="--window-tokens 128: this library was scored with 256"):
        score(lib, windows=16, window_tokens=128)
    assert score(lib, windows=16, window_tokens=128, rescore=True).scored == 3


def _many_books(tmp_path: Path, n: int = 192) -> Library:
    texts = {f"b{i:03d}": _prose(i, 600 + 40 * (i % 13)) for i in range(n)}
    for i in range(0, n, 5):  # some books noisier than others, so a ranking has something to rank
        texts[f"b{i:03d}"] = make_ocr_noise(texts[f"b{i:03d}"], 0.05 + 0.01 * (i % 7), seed=i)
    return make_library(tmp_path, texts, vocab_size=400, lang="en")


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bookmix", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _scored(path: Path) -> int:
    con = sqlite3.connect(path / "catalog.sqlite")
    try:
        return con.execute("SELECT COUNT(*) FROM books WHERE q_ocr IS NOT NULL").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


@pytest.mark.slow
def test_score_resumes_after_a_kill_and_select_gives_the_same_books(tmp_path, monkeypatch) -> None:
    lib = _many_books(tmp_path / "a")
    path = lib.path
    # killed mid-way: the units committed stay, the rest is scored by the re-run, nothing twice
    proc = _cli("library", "score", "--library", str(path), "--windows", "64", "--window-tokens", "16", "--json")
    deadline = time.monotonic() + 60
    while _scored(path) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = _scored(path)
    assert 0 < first < lib.count(), "the kill should land between two committed units"
    rerun = _cli("library", "score", "--library", str(path), "--windows", "64", "--window-tokens", "16", "--json")
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    assert json.loads(out)["scored"] == lib.count() - first
    # a library scored in one go gives the same columns and the same top books
    whole = _many_books(tmp_path / "b")
    score(whole, windows=64, window_tokens=16)
    by = "q_read - 100 * q_ocr - 10 * q_repeat"
    a, b = select_top(Library.open(path), 20, by), select_top(whole, 20, by)
    assert a.ids == b.ids and a.scores == b.scores and len(a.ids) == 20 and a.unscored == 0
    assert all(x >= y for x, y in zip(a.scores, a.scores[1:], strict=False))
    cli = _cli(
        "library",
        "select",
        "--library",
        str(path),
        "--top",
        "20",
        "--by",
        by,
        "--json",
        "--out",
        str(tmp_path / "top.txt"),
    )
    out, err = cli.communicate(timeout=60)
    assert json.loads(out)["ids"] == a.ids == (tmp_path / "top.txt").read_text().split()


def test_select_and_design_top(tmp_path) -> None:
    from bookmix.errors import BookmixError
    from bookmix.recipes.designs import make_design

    lib = make_library(tmp_path, {f"b{i}": _prose(i, 300) for i in range(8)}, vocab_size=300, lang="en")
    ids = [b.id for b in lib.books()]
    lib.set_column("q_x", ids, [float(i % 4) for i in range(8)])  # ties: broken by id
    sel = select_top(lib, 3, "q_x")
    top_two = sorted(i for k, i in enumerate(ids) if k % 4 == 3)
    assert sel.ids[:2] == top_two and sel.scores == [3.0, 3.0, 2.0]
    lib.set_column("q_x", ids[:1], [None])
    assert select_top(lib, 8, "q_x").unscored == 1 and len(select_top(lib, 8, "q_x").ids) == 7
    with pytest.raises(BookmixError, match="no such column"):
        select_top(lib, 3, "q_nope")
    recipes = make_design("random", lib, n=1, seed=0, books_per_set=3, top=3, order_by="q_x")
    assert sorted(recipes[0].books) == sorted(sel.ids)


@pytest.mark.slow
def test_reference_perplexity_bookmix_checkpoint_and_hf_export(tmp_path, one_torch_thread) -> None:
    pytest.importorskip("transformers")
    import torch

    from bookmix.evals.reference import reference_factory
    from bookmix.models.config import ModelConfig
    from bookmix.models.export import export_hf
    from bookmix.models.model import LM
    from bookmix.training.checkpoint import save_checkpoint

    texts = {"own": _prose(1, 6000), "other": " ".join(f"x{i % 97} q{i % 13}" for i in range(6000))}
    lib = make_library(tmp_path, texts, vocab_size=320, lang="en")
    own = lib.books(where="title = 'own'")[0]
    cfg = ModelConfig(name="t", vocab_size=lib.vocab_size, n_layer=2, n_head=2, d_model=32, block_size=64)
    torch.manual_seed(0)
    model = LM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    tokens = torch.as_tensor(np.asarray(lib.tokens(own.id), dtype=np.int64))
    for _ in range(60):  # a few steps on "own": it should find that book far less surprising than "other"
        starts = torch.randint(0, len(tokens) - 65, (16,))
        batch = torch.stack([tokens[s : s + 65] for s in starts.tolist()])
        _, loss = model(batch[:, :-1], batch[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    save_checkpoint(tmp_path / "run", model, opt, {"model": cfg.to_dict()}, {"step": 60})
    factory, name = reference_factory(str(tmp_path / "run"))
    score(lib, reference=factory, reference_name=name, windows=4)
    q = {b.title: b.extra for b in lib.books()}
    assert q["own"]["q_ppl"] < q["other"]["q_ppl"] and 0 < q["own"]["q_bpb"] < q["other"]["q_bpb"]
    from bookmix.errors import BookmixError

    hf = export_hf(tmp_path / "run", tmp_path / "hf", tokenizer_json=lib.path / "tokenizer.json")
    factory_hf, name_hf = reference_factory(str(hf))
    with pytest.raises(BookmixError, match="--rescore"):
        score(lib, reference=factory_hf, reference_name=name_hf, windows=4)
    score(lib, reference=factory_hf, reference_name=name_hf, windows=4, rescore=True)
    q_hf = {b.title: b.extra for b in lib.books()}
    # the same weights read through transformers with the same tokenizer: the same bits per byte, near enough
    for t in ("own", "other"):
        assert q_hf[t]["q_bpb"] == pytest.approx(q[t]["q_bpb"], rel=0.15)
