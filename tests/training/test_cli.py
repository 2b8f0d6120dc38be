"""`bookmix train` end to end on a real storyworld library, and `bookmix bench`."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from bookmix.cli import main
from bookmix.training.curve import read_curve


@pytest.fixture(scope="module")
def story_library(tmp_path_factory):
    from bookmix.library import Library, ingest
    from bookmix.storyworld.generate import generate

    root = tmp_path_factory.mktemp("story")
    generate(root / "world", books=8, seed=0, tokens_per_book=3000)
    ingest([root / "world"], root / "lib", tokenizer="train:400", holdout=0.25, workers=1)
    lib = Library.open(root / "lib")
    train_ids = [b.id for b in lib.books(split="train")]
    assert train_ids and lib.books(split="holdout")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"books": train_ids, "order": "random", "epochs": 2, "seed": 1}))
    return root / "lib", recipe


def _json_out(capsys) -> dict:
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on stdout
    return json.loads(out)


ARGS = ["--model", "nano", "--seq-len", "64", "--micro-batch", "8", "--lr", "3e-3", "--log-every", "5",
        "--eval-every", "25", "--checkpoint-every", "25", "--device", "cpu", "--json"]


@pytest.mark.slow
def test_train_on_a_storyworld_recipe_loss_falls_and_rerun_resumes(story_library, tmp_path, capsys):
    lib, recipe = story_library
    out = tmp_path / "run"
    argv = ["train", "--library", str(lib), "--recipe", str(recipe), "--out", str(out), *ARGS]
    assert main(argv) == 0
    result = _json_out(capsys)
    assert result["status"] == "completed"
    curve = read_curve(out / "curve.jsonl")
    assert curve[0]["loss"] - result["final_loss"] > 1.0  # from ~ln(400) = 6 down to the storyworld's regularities
    assert result["heldout_loss"] is not None and result["heldout_loss"] < math.log(400) - 1.0  # held-out books too
    assert [r["step"] for r in curve if "heldout_loss" in r][:2] == [25, 50]

    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["meta"]["recipe"]["epochs"] == 2 and config["meta"]["recipe_id"] == config["meta"]["recipe"]["id"]
    assert config["model"]["vocab_size"] == 400 and config["model"]["name"] == "nano"

    assert main(argv) == 0  # finished: the stored result comes back, nothing is trained again
    assert _json_out(capsys) == result


def test_train_epochs_and_max_tokens_options(story_library, tmp_path, capsys):
    lib, recipe = story_library
    argv = ["train", "--library", str(lib), "--recipe", str(recipe), "--out", str(tmp_path / "r"), *ARGS,
            "--epochs", "1", "--max-tokens", str(64 * 40)]
    assert main(argv) == 0
    result = _json_out(capsys)
    assert result["tokens"] == 64 * 40 and result["steps"] == 5


def test_train_bad_input_is_one_line_error(story_library, tmp_path, capsys):
    lib, recipe = story_library
    assert main(["train", "--library", str(tmp_path), "--recipe", str(recipe), "--out", str(tmp_path / "o")]) == 2
    assert "not a bookmix library" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--library", str(lib), "--recipe", str(recipe), "--out", str(tmp_path / "o"),
                 "--schedule", "linear"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "train.schedule" in err and "Traceback" not in err


def test_bench_reports_throughput_and_saves_a_calibration(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BOOKMIX_HOME", str(tmp_path))
    argv = ["bench", "--model", "nano", "--vocab", "256", "--seq-len", "32", "--micro-batch", "2", "--seconds", "0.2",
            "--device", "cpu", "--json"]
    assert main(argv) == 0
    out = _json_out(capsys)
    assert out["device"] == "cpu" and out["preset"] == "nano" and out["dtype"] == "fp32"
    assert out["tokens_per_s"] > 0 and out["steps"] >= 2
    from bookmix.models.config import preset

    assert out["flops_per_s"] == pytest.approx(preset("nano", vocab_size=256).flops_per_token(32) * out["tokens_per_s"])
    assert 0 < out["mfu"] <= 1.5 and out["mfu"] == pytest.approx(out["flops_per_s"] / out["peak_flops"])
    from bookmix.forecast.calibration import load_calibration

    record = load_calibration("cpu", "nano")
    assert record["tokens_per_s"] == pytest.approx(out["tokens_per_s"]) and record["seq_len"] == 32


def test_train_and_train_pack_take_their_training_flags_from_train_config():
    from typer.main import get_command

    from bookmix.cli import _register
    from bookmix.cli.app import app
    from bookmix.cli.train_options import FLAGS
    from bookmix.training.config import TrainConfig

    _register()
    commands = get_command(app).commands  # type: ignore[attr-defined]
    defaults = TrainConfig().model_dump()
    for name in ("train", "train-pack"):
        params = {p.name: p for p in commands[name].params}
        assert set(FLAGS) <= set(params), name
        assert {f: params[f].default for f in FLAGS} == {f: defaults[f] for f in FLAGS}, name
