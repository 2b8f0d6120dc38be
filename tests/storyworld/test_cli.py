"""`bookmix storyworld generate|check`: one JSON object on stdout with --json, one-line errors with status 2."""

from __future__ import annotations

import json

from bookmix.cli import main
from bookmix.storyworld import Manifest


def test_generate_json_then_check_json(tmp_path, capsys):
    out = tmp_path / "sw"
    code = main(["storyworld", "generate", "--out", str(out), "--books", "8", "--seed", "1", "--tokens-per-book", "2000",
                 "--mix", "fact=0.5,story=0.25,misleading=0.25", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["books"] == {"fact": 4, "rule": 0, "story": 2, "noise": 0, "misleading": 2}
    assert summary["holdout"] == Manifest.load(out).book_names(holdout=True) and len(summary["holdout"]) == 1
    assert summary["groups"]["fact_recall/fact_000"] == 24

    assert main(["storyworld", "check", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    helps, hurts = report["effects"]
    assert (helps["books"], hurts["books"]) == ("helps", "hurts")
    assert helps["diff"] > 3 * helps["se"]
    assert hurts["diff"] < 0


def test_generate_human_output_goes_to_stderr(tmp_path, capsys):
    assert (
        main(["storyworld", "generate", "--out", str(tmp_path / "sw"), "--books", "3", "--tokens-per-book", "500"]) == 0
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fact_recall/fact_000" in captured.err and "library ingest" in captured.err


def test_bad_mix_and_non_empty_folder_are_one_line_errors(tmp_path, capsys):
    assert main(["storyworld", "generate", "--out", str(tmp_path / "a"), "--mix", "fact=0.7,story=0.2"]) == 2
    err = capsys.readouterr().err
    assert "storyworld.mix: proportions must sum to 1, got 0.9" in err and "Traceback" not in err
    assert main(["storyworld", "generate", "--out", str(tmp_path / "a"), "--mix", "fact=lots"]) == 2
    assert "--mix: proportion of 'fact' must be a number" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("x")
    assert main(["storyworld", "generate", "--out", str(tmp_path / "b")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "b" / "keep.txt").read_text() == "x"
    assert not (tmp_path / "a").exists()


def test_check_json_is_strict_json_even_when_an_effect_is_exact(world):
    from bookmix.storyworld import Effect

    exact = Effect("fact_recall", "hurts", ["misleading_000.txt"], 24, 0.0, 1.0, -1.0, 0.0, -1.3, 0.06)
    assert exact.z == float("-inf")
    strict = json.dumps(exact.to_dict(), allow_nan=False)  # raises on inf/nan
    assert json.loads(strict)["z"] is None
