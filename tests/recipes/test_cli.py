"""`bookmix design` and `bookmix recipe show`: files written, one JSON object with --json, one-line errors."""

from __future__ import annotations

import json

import numpy as np

from bookmix.cli import main
from bookmix.recipes import RecipeStream, load_recipes


def _json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    return json.loads(out)


def test_design_writes_reproducible_recipes(small_lib, tmp_path, capsys):
    lib = str(small_lib.path)
    argv = ["design", "--library", lib, "--design", "random", "--n", "4", "--books-per-set", "3", "--seed", "2"]
    first = _json(capsys, [*argv, "--out", str(tmp_path / "a.jsonl"), "--json"])
    again = _json(capsys, [*argv, "--out", str(tmp_path / "b.jsonl"), "--json"])
    assert first["ids"] == again["ids"] and first["n"] == 4
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    assert [r.id for r in load_recipes(tmp_path / "a.jsonl")] == first["ids"]
    cfg = tmp_path / "d.yaml"
    cfg.write_text("design:\n  design: datamodels\n  n: 3\n  alpha: 0.5\n")
    got = _json(
        capsys,
        [
            "design",
            "--library",
            lib,
            "--config",
            str(cfg),
            "--param",
            "recipe.epochs=2",
            "--out",
            str(tmp_path / "c.jsonl"),
            "--json",
        ],
    )
    assert got["design"] == "datamodels" and all(r.epochs == 2 for r in load_recipes(tmp_path / "c.jsonl"))


def test_recipe_show_and_window_export(small_lib, tmp_path, capsys):
    lib = str(small_lib.path)
    main(
        [
            "design",
            "--library",
            lib,
            "--design",
            "random",
            "--n",
            "3",
            "--books-per-set",
            "2",
            "--out",
            str(tmp_path / "r.jsonl"),
        ]
    )
    capsys.readouterr()
    rid = load_recipes(tmp_path / "r.jsonl")[1].id
    info = _json(
        capsys, ["recipe", "show", str(tmp_path / "r.jsonl"), "--id", rid[:6], "--library", lib, "-T", "32", "--json"]
    )
    assert info["recipe"]["id"] == rid and info["stream"]["total_tokens"] == info["stream"]["n_windows"] * 32
    info = _json(
        capsys,
        [
            "recipe",
            "show",
            str(tmp_path / "r.jsonl"),
            "--index",
            "1",
            "--library",
            lib,
            "-T",
            "32",
            "--windows",
            "--out",
            str(tmp_path / "w.npz"),
            "--json",
        ],
    )
    stream = load_recipes(tmp_path / "r.jsonl")[1].stream(small_lib, 32)
    rebuilt = RecipeStream.from_export(small_lib, tmp_path / "w.npz")
    assert np.array_equal(rebuilt.windows(0, rebuilt.n_windows), stream.windows(0, stream.n_windows))
    assert (
        main(["recipe", "show", str(tmp_path / "r.jsonl"), "--index", "1", "--library", lib, "-T", "32", "--windows"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == stream.n_windows and lines[0] == "0\t" + "\t".join(map(str, stream.window_index()[0]))


def test_errors_are_one_line_with_status_2(small_lib, tmp_path, capsys):
    lib = str(small_lib.path)
    code = main(
        [
            "design",
            "--library",
            lib,
            "--design",
            "random",
            "--n",
            "2",
            "--books-per-set",
            "99",
            "--out",
            str(tmp_path / "x.jsonl"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and "books_per_set: 99 is more than the 11 books in the pool" in err
        and not (tmp_path / "x.jsonl").exists()
    )
    (tmp_path / "bad.yaml").write_text("books: [abc]\nsparsity: {keep: 0}\n")
    assert main(["recipe", "show", str(tmp_path / "bad.yaml")]) == 2
    assert "sparsity.keep: must be in (0, 1], got 0" in capsys.readouterr().err


def test_recipe_cluster_writes_the_catalog(small_lib, capsys):
    got = _json(capsys, ["recipe", "cluster", "--library", str(small_lib.path), "--k", "2", "--json"])
    assert got["books"] == 14 and sum(got["sizes"].values()) == 14 and len(got["sizes"]) == 2
    assert set(small_lib.table(["cluster"])["cluster"].tolist()) == {0, 1}
