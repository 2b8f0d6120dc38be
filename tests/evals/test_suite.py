"""Suite YAML: the shipped example loads; invalid files fail with the field path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bookmix.errors import ConfigError
from bookmix.evals.suite import Suite

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ltm_eval_set.yaml"


def _suite(tmp_path: Path, data: dict) -> Suite:
    p = tmp_path / "suite.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return Suite.load(p)


def test_example_suite_loads_and_validates():
    s = Suite.load(EXAMPLE)
    types = {t.type for t in s.tasks}
    assert {"heldout_loss", "next_passage", "entity_recall", "blimp", "rublimp", "probe_shelf", "samples"} <= types
    assert set(s.groups) == {"long_range", "grammar", "reasoning"}
    # Nothing optional in the shipped suite: every task builds its items or fails loudly.
    assert not [t.key for t in s.tasks if getattr(t, "required", True) is False]
    scene = next(t for t in s.tasks if t.type == "next_passage")
    assert scene.gap_tokens >= 200 and scene.n_other_books == 0  # the scene, not the next word
    assert s.objective.direction == "maximize"
    assert s.objective.weights["heldout/bpb"] < 0
    assert s.folder == EXAMPLE.parent


BASE = {"tasks": [{"name": "a", "type": "heldout_loss"}, {"name": "b", "type": "next_passage"},
                  {"name": "c", "type": "next_passage", "n_items": 5}], "objective": "a/bpb"}


def test_direction_follows_the_metric(tmp_path):
    assert _suite(tmp_path, BASE).objective.direction == "minimize"
    s = _suite(tmp_path, {**BASE, "objective": {"weights": {"b/acc": 1, "a/loss": -1}}})
    assert s.objective.direction == "maximize"
    with pytest.raises(ConfigError, match=r"objective.direction: needed"):
        _suite(tmp_path, {**BASE, "objective": {"weights": {"b/acc": 1, "a/loss": 1}}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": [*BASE["tasks"][:2], {"name": "c", "type": "next_passage", "n_items": 0}]},
         r"suite.yaml: tasks\[2\].n_items: must be ≥ 1, got 0"),
        ({"tasks": [{"type": "nope"}]}, r"tasks\[0\].type: unknown task type 'nope'"),
        ({"tasks": [{"name": "a", "type": "heldout_loss", "colour": 1}]}, r"tasks\[0\].colour: unknown field"),
        ({"tasks": [{"name": "a", "type": "samples"}]}, r"tasks\[0\].prompts: missing"),
        ({"tasks": BASE["tasks"] + [{"name": "a", "type": "heldout_loss"}]}, r"tasks\[3\].name: 'a' is already"),
        ({"objective": "b/nonsense"}, r"objective.weights: unknown metric 'b/nonsense'"),
        ({"objective": None}, r"objective: missing"),
        ({"objective": {"metric": "a/bpb", "direction": "up"}}, r"objective.direction: "),
        ({"bootstrap": 1}, r"bootstrap: must be ≥ 2, got 1"),
        ({"tasks": []}, r"tasks: must be a non-empty list"),
    ],
)
def test_invalid_suites_name_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        _suite(tmp_path, {**BASE, **change})


def test_group_metrics_are_known_to_the_objective(tmp_path):
    tasks = [{"name": "x", "type": "next_passage", "group": "g"}, {"name": "y", "type": "entity_recall", "group": "g"}]
    s = _suite(tmp_path, {"tasks": tasks, "objective": "g/acc"})
    assert [t.key for t in s.groups["g"]] == ["x", "y"]
    with pytest.raises(ConfigError, match=r"tasks\[1\].group: 'x' is also a task name"):
        _suite(tmp_path, {"tasks": [tasks[0], {**tasks[1], "group": "x"}], "objective": "x/acc"})


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="no such suite file"):
        Suite.load(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        Suite.load(bad)
