"""The lm-evaluation-harness bridge: a local task on the exported checkpoint, offline, merged into our metrics, and
scoring the same items exactly as our own multiple_choice task does."""

from __future__ import annotations

import pytest
import yaml

from bookmix.errors import BookmixError
from bookmix.evals import Suite, evaluate
from bookmix.training.checkpoint import load_model

from .test_evaluate import write_items

LOCAL_TASK = {
    "task": "bookmix_give",
    "dataset_path": "json",
    "test_split": "test",
    "output_type": "multiple_choice",
    "doc_to_text": "{{context}}",
    "doc_to_choice": "{{choices}}",
    "doc_to_target": "answer",
    "target_delimiter": "",
    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                    {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
}


def _suite(folder) -> Suite:
    write_items(folder)
    (folder / "lm_tasks").mkdir()
    task = {**LOCAL_TASK, "dataset_kwargs": {"data_files": {"test": str(folder / "mc.jsonl")}}}
    (folder / "lm_tasks" / "bookmix_give.yaml").write_text(yaml.safe_dump(task), encoding="utf-8")
    data = {"tasks": [{"name": "ours", "type": "multiple_choice", "path": "mc.jsonl"},
                      {"name": "harness", "type": "lm_eval", "tasks": ["bookmix_give"], "include_path": "lm_tasks"}],
            "objective": {"weights": {"harness/acc": 1.0, "ours/acc": 1.0}}}
    (folder / "suite.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return Suite.load(folder / "suite.yaml")


def test_lm_eval_needs_a_checkpoint(tmp_path, story_library, trained_run):
    model, _, _ = load_model(trained_run)
    with pytest.raises(BookmixError, match="harness: lm_eval tasks run on an exported checkpoint"):
        evaluate(model, _suite(tmp_path), story_library)


@pytest.mark.slow
def test_local_lm_eval_task_agrees_with_our_scoring(tmp_path, story_library, trained_run):
    pytest.importorskip("lm_eval")
    model, _, _ = load_model(trained_run)
    r = evaluate(model, _suite(tmp_path), story_library, checkpoint=trained_run)
    assert r.tasks["harness"]["items"] == r.tasks["ours"]["items"] == 40
    for m in ("acc", "acc_norm"):
        # Not bit-equal: we start every context with the end-of-book token (a document start, as in training);
        # the harness conditions on the context alone (the export declares no bos token). One or two items of 40 flip.
        assert r.metrics[f"harness/{m}"].value == pytest.approx(r.metrics[f"ours/{m}"].value, abs=2 / 40 + 1e-9)
        assert r.metrics[f"harness/{m}@task=bookmix_give"].n == 40
    assert r.metrics["harness/acc"].value > 0.5  # the trained model, not chance
    assert r.tasks["harness"]["harness"]["bookmix_give"]["acc,none"] == pytest.approx(r.metrics["harness/acc"].value)
