"""evaluate() end to end on a real library and real models: chance for an untrained model, better after training,
error bars, item cache, jsonl tasks, and the `bookmix eval` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from bookmix.cli import main
from bookmix.errors import BookmixError
from bookmix.evals import EvalResult, Suite, evaluate
from bookmix.models.model import LM
from bookmix.training.checkpoint import load_model

from .conftest import SYLLABLES, THINGS

VERBS = ["walked", "said", "sat", "was", "looked"]


def write_items(folder):
    """Multiple-choice and minimal-pair items in the stories' own grammar (so training can teach them)."""
    rng = np.random.default_rng(0)
    names = ["".join(rng.choice(SYLLABLES, size=2)).capitalize() + "n" for _ in range(40)]
    mc, pairs = [], []
    for i, name in enumerate(names):
        # "gave the" is followed by a thing in the stories, never by a verb: learnable from the training books.
        thing, wrong = rng.choice(THINGS), list(rng.choice(VERBS, size=3, replace=False))
        choices = [" " + w for w in wrong]
        answer = int(rng.integers(0, 4))
        choices.insert(answer, " " + thing)
        mc.append({"context": f"Then {name} gave the", "choices": choices, "answer": answer, "group": f"give/{i % 2}"})
        other = names[(i + 1) % len(names)]
        thing = rng.choice(THINGS)
        pairs.append({"good": f"Then {name} gave the {thing} to {other} and said nothing.",
                      "bad": f"Then {name} gave {other} the to {thing} nothing and said."})
    (folder / "mc.jsonl").write_text("".join(json.dumps(x) + "\n" for x in mc), encoding="utf-8")
    (folder / "pairs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in pairs), encoding="utf-8")


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suite")
    write_items(folder)
    data = {
        "name": "t",
        "seed": 3,
        "bootstrap": 400,
        "tasks": [
            {"name": "heldout", "type": "heldout_loss", "tokens_per_book": 2048},
            {"name": "scene", "type": "next_passage", "n_items": 160, "context_tokens": 64, "min_distance": 512,
             "group": "long"},
            {"name": "names", "type": "entity_recall", "n_items": 60, "context_chars": 300, "group": "long"},
            {"name": "mc", "type": "multiple_choice", "path": "mc.jsonl"},
            {"name": "pairs", "type": "minimal_pairs", "path": "pairs.jsonl"},
            {"name": "extra", "type": "multiple_choice", "path": "absent/*.jsonl", "required": False},
            {"name": "say", "type": "samples", "prompts": ["In the morning", "Then"], "max_new_tokens": 8},
        ],
        "objective": {"weights": {"scene/margin_calibrated": 1.0, "heldout/bpb": -0.1}},
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def untrained(story_library, tiny_cfg, suite_file) -> EvalResult:
    return evaluate(LM(tiny_cfg, seed=1), Suite.load(suite_file), story_library)


@pytest.fixture(scope="module")
def trained(story_library, trained_run, suite_file) -> EvalResult:
    model, _, _ = load_model(trained_run)
    return evaluate(model, Suite.load(suite_file), story_library)


def _within(m, chance, k=3.0):
    return abs(m.value - chance) <= k * m.stderr + 0.02


def test_untrained_model_is_at_chance(untrained):
    r = untrained
    assert r.tasks["scene"]["chance"] == pytest.approx(0.25)
    for name in ("scene/acc", "scene/acc_calibrated", "mc/acc", "mc/acc_norm"):
        assert _within(r.metrics[name], 0.25), (name, r.metrics[name])
    assert _within(r.metrics["pairs/acc"], 0.5)
    assert _within(r.metrics["mc/prob"], 0.25) and _within(r.metrics["pairs/prob"], 0.5)
    # an untrained model's loss is near the uniform log(V)
    assert r.metrics["heldout/loss"].value == pytest.approx(np.log(512), rel=0.05)


def test_trained_model_beats_chance_and_the_untrained(untrained, trained):
    for name, chance in (("scene/acc_calibrated", 0.25), ("mc/acc", 0.25), ("pairs/acc", 0.5)):
        m = trained.metrics[name]
        assert m.value > chance + 3 * m.stderr, (name, m)
    assert trained.metrics["heldout/loss"].value < untrained.metrics["heldout/loss"].value - 1.0
    assert trained.metrics["scene/margin_calibrated"].value > untrained.metrics["scene/margin_calibrated"].value
    for name, chance in (("mc/prob", 0.25), ("pairs/prob", 0.5)):  # bounded, continuous: above chance, below 1
        m = trained.metrics[name]
        assert chance + 3 * m.stderr < m.value <= 1.0, (name, m)
    assert trained.objective.value > untrained.objective.value + 3 * trained.objective.stderr


def test_result_shape_groups_breakdowns_and_samples(untrained, story_library):
    r = untrained
    held = {b.lang for b in story_library.books(split="holdout")}
    assert {f"heldout/loss@lang={lang}" for lang in held} <= set(r.metrics)
    assert any(k.startswith("heldout/bpb@genre=") for k in r.metrics)
    assert {"mc/acc@group=give", "long/acc", "long/logprob"} <= set(r.metrics)
    long_acc = r.metrics["long/acc"]
    assert long_acc.value == pytest.approx((r.metrics["scene/acc"].value + r.metrics["names/acc"].value) / 2)
    for m in r.metrics.values():
        assert m.n > 0 and (np.isfinite(m.stderr) or m.n == 1)
    assert r.tasks["extra"]["items"] == 0 and "skipped" in r.tasks["extra"]
    assert [s["prompt"] for s in r.samples] == ["In the morning", "Then"]
    assert r.objective.direction == "maximize" and r.objective.stderr > 0
    assert r.items == sum(t["items"] for t in r.tasks.values()) and r.items_per_second > 0
    again = EvalResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.metrics["scene/acc"] == r.metrics["scene/acc"]


def test_items_are_cached_in_the_library_and_reproducible(untrained, story_library, tiny_cfg, suite_file):
    cached = sorted(p.name.split("-")[0] for p in (story_library.path / "evals").glob("*.jsonl"))
    assert cached == ["entity_recall", "next_passage"]
    suite = Suite.load(suite_file)
    fresh = evaluate(LM(tiny_cfg, seed=1), suite, story_library, cache=False)  # rebuilt, not read
    for k in ("scene/acc", "names/logprob", "mc/margin", "heldout/bpb"):
        assert fresh.metrics[k].value == pytest.approx(untrained.metrics[k].value, abs=1e-6)
        assert fresh.metrics[k].stderr == pytest.approx(untrained.metrics[k].stderr, abs=1e-6)


def test_bad_items_name_the_file_and_line(tmp_path, story_library, tiny_cfg):
    (tmp_path / "bad.jsonl").write_text('{"context": "a", "choices": [" b", " c"], "answer": 0}\n{oops\n')
    (tmp_path / "wrong.jsonl").write_text('{"context": "a", "choices": [" b", " c"], "answer": 5}\n')
    model = LM(tiny_cfg)
    for file, msg in (("bad.jsonl", r"bad.jsonl:2: not valid JSON"), ("wrong.jsonl", r"wrong.jsonl:1: \"answer\""),
                      ("none.jsonl", r"mc.path: no file matches")):
        suite = Suite.from_dict({"tasks": [{"name": "mc", "type": "multiple_choice", "path": str(tmp_path / file)}],
                                 "objective": "mc/acc"})
        with pytest.raises(BookmixError, match=msg):
            evaluate(model, suite, story_library)


def test_cli_json_prints_one_object(trained_run, story_library, suite_file, capsys, tmp_path):
    out = tmp_path / "result.json"
    code = main(["eval", str(trained_run), "--library", str(story_library.path), "--suite", str(suite_file),
                 "--device", "cpu", "--json", "--out", str(out)])
    assert code == 0
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1
    printed = json.loads(stdout)
    assert printed == json.loads(out.read_text())
    assert set(printed["objective"]) == {"value", "stderr", "direction", "weights"}
    assert printed["metrics"]["scene/acc_calibrated"]["value"] > 0.25


def test_cli_errors_are_one_line(tmp_path, story_library, capsys):
    bad = tmp_path / "s.yaml"
    bad.write_text("tasks: [{type: next_passage, n_items: 0}]\nobjective: x\n")
    code = main(["eval", str(tmp_path), "--library", str(story_library.path), "--suite", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert "tasks[0].n_items: must be ≥ 1, got 0" in err and "Traceback" not in err


def test_model_mode_is_restored_and_plain_functions_work(story_library, tiny_cfg):
    model = LM(tiny_cfg, seed=1)
    assert model.training
    suite = Suite.from_dict({"tasks": [{"name": "h", "type": "heldout_loss", "tokens_per_book": 300}], "objective": "h/loss"})
    a = evaluate(model, suite, story_library)
    assert model.training  # evaluated mid-training: back in training mode afterwards
    b = evaluate(lambda idx: model(idx)[0], suite, story_library, block_size=tiny_cfg.block_size)
    assert a.metrics["h/loss"].value == pytest.approx(b.metrics["h/loss"].value, rel=1e-5)
    with pytest.raises(BookmixError, match="block_size is needed"):
        evaluate(lambda idx: model(idx)[0], suite, story_library)
