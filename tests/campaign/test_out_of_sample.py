"""The out-of-sample stage: fresh recipes trained after the search, predicted by the analysis but never fitted."""

from __future__ import annotations

import json

import pytest

from bookmix.campaign.runner import run_campaign
from bookmix.config import ConfigError, parse_pipeline

from .conftest import db_rows, pipeline_dict


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, world_library):
    out = tmp_path_factory.mktemp("oos") / "c"
    data = pipeline_dict(
        out, world_library,
        search={"designs": [{"design": "random", "n": 6, "books_per_set": 3, "seed": 0}]},
        analysis={"enabled": True, "out_of_sample": 3, "options": {"n_boot": 20, "folds": 2, "splits": 4}},
        executor={"trials_per_unit": 4},
    )  # fmt: skip
    cfg = parse_pipeline(data)
    summary = run_campaign(cfg, show_progress=False)
    return out, cfg, summary


def test_out_of_sample_trials_are_predicted_not_fitted(campaign):
    out, _, summary = campaign
    assert summary.counts["completed"] == 6 + 2 + 3  # 6 recipes, ceil(0.25 x 6) = 2 replicates, 3 fresh
    oos = db_rows(out, "SELECT recipe_id FROM trials WHERE stage='oos'")
    search = {r for (r,) in db_rows(out, "SELECT recipe_id FROM trials WHERE stage IN ('search', 'replicate')")}
    assert len(oos) == 3 and not {r for (r,) in oos} & search  # fresh recipes, none of them searched
    findings = json.loads((out / "findings.json").read_text())
    assert findings["n_trials"] == 8  # the fit saw the search and replicate trials only
    dm = findings["out_of_sample"]["predictors"]["datamodel"]
    assert dm["n"] == 3 and len(dm["predicted"]) == 3 and len(dm["measured"]) == 3
    measured = sorted(-o for (o,) in db_rows(out, "SELECT objective FROM trials WHERE stage='oos'"))  # minimised loss
    assert sorted(dm["measured"]) == pytest.approx(measured)  # oriented higher-is-better, as the analysis reads
    assert any(line.startswith("Out of sample: on 3 fresh recipes") for line in findings["summary"])
    assert findings["reliability"]["level"] in findings["reliability"]["candidates"]


def test_rerun_repeats_nothing(campaign):
    out, cfg, summary = campaign
    before = (out / "findings.json").stat().st_mtime_ns
    again = run_campaign(cfg, show_progress=False)
    assert again.counts == summary.counts
    assert (out / "findings.json").stat().st_mtime_ns == before  # the same trials: the analysis is not redone


def test_out_of_sample_needs_a_design_that_can_draw_fresh_recipes(tmp_path, world_library):
    data = pipeline_dict(tmp_path / "c", world_library, analysis={"enabled": True, "out_of_sample": 2},
                         search={"designs": [{"design": "list", "recipes": [{"books": ["a"]}]}]})  # fmt: skip
    with pytest.raises(ConfigError, match="analysis.out_of_sample: draws fresh recipes from search.designs"):
        parse_pipeline(data)
