"""The pipeline schema: invalid files fail before any work with `field.path: reason`; shipped examples validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookmix.config import PipelineConfig, is_pipeline_yaml, load_pipeline, parse_pipeline
from bookmix.errors import ConfigError

from .conftest import REPO, pipeline_dict, write_pipeline


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_pipeline(data)
    return str(exc.value)


@pytest.fixture
def base(tmp_path) -> dict:
    return pipeline_dict(tmp_path / "c", tmp_path / "lib")


def test_valid_pipeline_resolves_paths(tmp_path, base):
    path = write_pipeline(tmp_path / "p.yaml", base)
    cfg = load_pipeline(path)
    assert isinstance(cfg, PipelineConfig)
    assert cfg.campaign_dir == tmp_path / "c"
    assert cfg.suite_path == tmp_path / "c" / "suite.yaml"  # inline suites are written into the campaign
    assert cfg.seeds.replicates == 0.25 and cfg.train.micro_batch == 8
    assert cfg.model.resolve(512).n_layer == 1
    resolved = cfg.resolved()
    assert resolved["library"]["path"] == str(tmp_path / "lib")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"search": {"designs": [{"design": "random", "n": 4, "books_per_set": 0}]}}, "search.designs[0].books_per_set: must be ≥ 1, got 0"),
        ({"search": {"designs": [{"design": "nope"}]}}, "search.designs[0].design: must be one of"),
        ({"search": {"designs": []}}, "search.designs:"),
        ({"train": {"lr": -1}}, "train.lr:"),
        ({"train": {"micro_batchh": 2}}, "train.micro_batchh: unknown field"),
        ({"model": {"preset": "huge"}}, "model.preset: unknown 'huge'"),
        ({"model": {"overrides": {"d_model": 30, "n_head": 4}}}, "model.d_model: must be divisible"),
        ({"seeds": {"replicates": 1.5}}, "seeds.replicates:"),
        ({"dialogue": {"enabled": True}}, "dialogue.data: required (a chat jsonl) unless the library is a generated"),
        ({"dialogue": {"enabled": True, "data": "c.jsonl", "top": 3}}, "dialogue.top: 3 exceeds selection.top_k 2"),
        ({"dialogue": {"enabled": True, "data": "c.jsonl", "top": 1}, "model": {"hf_base": "b"}},
         "dialogue.enabled: the dialogue layer fine-tunes bookmix-trained models"),
        ({"model": {"hf_base": "b", "overrides": {"n_layer": 2}}}, "model.overrides: a fine-tuned base keeps its own shape"),
        ({"model": {"hf_base": "b", "finetune": "qlora"}}, "model.finetune:"),
        ({"executor": {"trials_per_unit": 0}}, "executor.trials_per_unit: must be ≥ 1 or auto, got 0"),
        ({"executor": {"trials_per_unit": "many"}}, "executor.trials_per_unit"),
        ({"executor": {"pack": 2, "trials_per_unit": 2}}, "executor.pack: renamed trials_per_unit"),
        ({"executor": {"kind": "slurm"}}, "executor.kind:"),
        ({"library": {}}, "library: give either path"),
        ({"eval": {"suite": {"tasks": [], "objective": "x"}}}, "eval.suite.tasks: must be a non-empty list"),
        ({"bogus": 1}, "bogus: unknown field"),
        ({"verification": {"enabled": True}, "analysis": {"enabled": False}}, "verification.enabled: needs analysis"),
        # analysis options are typed: a bad one fails here, not after every search trial has trained
        ({"analysis": {"options": {"n_boot": -1}}}, "analysis.options.n_boot: must be ≥ 0, got -1"),
        ({"analysis": {"options": {"boots": 100}}}, "analysis.options.boots: unknown field"),
        ({"analysis": {"options": {"constraints": {"set_size": 0}}}}, "analysis.options.constraints.set_size: must be ≥ 1"),
    ],
)
def test_invalid_pipelines_name_the_field(base, change, expected):
    data = {**base, **change}
    assert expected in _error(data)


def test_the_old_executor_pack_key_still_reads_with_a_warning_naming_the_new_one(base):
    with pytest.warns(FutureWarning, match="executor.trials_per_unit"):
        cfg = PipelineConfig.model_validate({**base, "executor": {"pack": 3}})
    assert cfg.executor.trials_per_unit == 3


def test_analysis_options_load_typed(base):
    from bookmix.analysis.config import AnalysisConfig

    cfg = parse_pipeline({**base, "analysis": {"options": {"n_boot": 50, "constraints": {"set_size": 5}}}})
    assert isinstance(cfg.analysis.options, AnalysisConfig)
    assert cfg.analysis.options.n_boot == 50 and cfg.analysis.options.constraints.set_size == 5
    assert cfg.resolved()["analysis"]["options"]["constraints"]["set_size"] == 5  # pipeline.yaml keeps them


def test_missing_section_and_bad_yaml(tmp_path, base):
    del base["eval"]
    assert "eval: missing (required)" in _error(base)
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_pipeline(bad)
    with pytest.raises(ConfigError, match="pipeline file not found"):
        load_pipeline(tmp_path / "absent.yaml")


def test_file_errors_name_the_file(tmp_path, base):
    base["train"] = {"warmup": 2.5}
    path = write_pipeline(tmp_path / "p.yaml", base)
    with pytest.raises(ConfigError) as exc:
        load_pipeline(path)
    assert str(exc.value).startswith(f"{path.resolve()}: train.")


def _shipped_pipelines() -> list[Path]:
    return sorted(p for p in (REPO / "examples").glob("*.yaml") if is_pipeline_yaml(p))


def test_finetune_mode_and_dialogue_resolve(tmp_path, base):
    data = {**base, "model": {"hf_base": "bases/tiny", "finetune": "full"}}
    cfg = load_pipeline(write_pipeline(tmp_path / "p.yaml", data))
    assert cfg.trial_model(512) == {"base": str(tmp_path / "bases" / "tiny"), "method": "full", "seq_len": None}
    assert cfg.resolved()["model"]["hf_base"] == str(tmp_path / "bases" / "tiny")
    # a preset: the trials carry its ModelConfig with the library's vocabulary
    data = {**base, "dialogue": {"enabled": True, "data": "chat.jsonl", "top": 2}}
    plain = load_pipeline(write_pipeline(tmp_path / "q.yaml", data))
    assert plain.trial_model(512)["vocab_size"] == 512 and plain.trial_model(512)["n_layer"] == 1
    assert plain.dialogue_data == tmp_path / "chat.jsonl" and plain.dialogue.epochs == 3 and plain.dialogue.lr == 3e-4
    # a generated storyworld library brings its own chat data
    sw = {**base, "library": {"storyworld": {"books": 8}}, "dialogue": {"enabled": True, "top": 1}}
    assert load_pipeline(write_pipeline(tmp_path / "s.yaml", sw)).dialogue_data == tmp_path / "c" / "storyworld" / "chat.jsonl"


def test_examples_are_found():
    names = {p.name for p in _shipped_pipelines()}
    assert {"demo.yaml", "ltm_bruteforce_pipeline.yaml"} <= names


@pytest.mark.parametrize("path", _shipped_pipelines(), ids=lambda p: p.name)
def test_every_shipped_pipeline_validates(path):
    cfg = load_pipeline(path)
    assert cfg.search.designs and cfg.campaign.name
    # a dialogue stage is only shipped where its chat data comes with it (the demo's generated storyworld)
    assert not cfg.dialogue.enabled or cfg.dialogue.data or cfg.library.storyworld is not None
    # the suite it names parses too (inline or a file beside it)
    from bookmix.evals.suite import Suite

    if isinstance(cfg.eval.suite, dict):
        Suite.from_dict(cfg.eval.suite)
    elif cfg.suite_path.exists():
        Suite.load(cfg.suite_path)
    else:
        pytest.skip(f"{path.name}: its suite {cfg.suite_path.name} is not shipped yet (the evals room's file)")
