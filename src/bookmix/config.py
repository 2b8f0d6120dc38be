"""The pipeline YAML: one file describes a whole campaign (library → designs → training → evals → analysis → report).

Settings are grouped like litgpt's configs, one pydantic model per group, with a docstring per field. An invalid file
fails before any work with ``field.path: reason`` (:func:`load_pipeline`). Sections of other rooms are embedded as
their own schemas (``TrainConfig`` from the trainer, the recipes' ``DesignConfig``) so there is one source of truth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bookmix.analysis.config import AnalysisConfig
from bookmix.errors import ConfigError, field_error
from bookmix.recipes.shelf import ProbeShelf
from bookmix.training.config import SFT_DEFAULTS, TrainConfig
from bookmix.utils.io import read_yaml

if TYPE_CHECKING:
    from bookmix.models.config import ModelConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CampaignSection(_Section):
    """Where the campaign lives."""

    name: str = Field(min_length=1)
    """Campaign name: used in logs, trackers and as the default folder name."""
    out: Path | None = None
    """Campaign folder (results database, trial folders, report). Default: ``campaigns/<name>`` beside the YAML."""
    time_budget: float | None = None
    """Wall time you allow the campaign: seconds, or a duration with a unit ("45m", "8h", "1.5d"). Before training,
    `bookmix run` forecasts the remaining stages and refuses to start when the forecast exceeds it (``--force``
    starts anyway); `bookmix run --plan` shows the forecast beside it. None: no budget."""

    @field_validator("time_budget", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        from bookmix.forecast.units import parse_duration

        return None if v is None else parse_duration(v)


class StoryworldSpec(_Section):
    """A synthetic storyworld library generated and ingested by the campaign itself (demo, tests, offline use)."""

    books: int = Field(48, ge=4)
    """Books to generate. 48 gives enough books for sets of 8–16 with room for a held-out split."""
    seed: int = 0
    """Seed of the storyworld: the same seed gives the same books, so the library is rebuilt identically."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments passed to ``bookmix.storyworld.generate`` (e.g. words per book)."""


class LibrarySection(_Section):
    """The books: an existing library folder, or a storyworld to generate and ingest into the campaign folder."""

    path: Path | None = None
    """An ingested library (``bookmix library ingest``). With ``storyworld`` set, where the generated one goes."""
    storyworld: StoryworldSpec | None = None
    """Generate a synthetic library instead of reading one (written to ``path`` or ``<campaign>/library``)."""
    tokenizer: str = "train:4096"
    """Tokenizer for a generated library: ``train:VOCAB`` or a tokenizer.json path. 4096 suits a few MB of text."""
    holdout: float = Field(0.1, ge=0, lt=1)
    """Fraction of generated books kept out of every recipe for evaluation."""

    @model_validator(mode="after")
    def _one_source(self) -> LibrarySection:
        if self.path is None and self.storyworld is None:
            raise ValueError("give either path (an ingested library) or storyworld (to generate one)")
        return self


class SearchSection(_Section):
    """How recipes are found: the designs of round 0, then rounds that mutate the best so far."""

    designs: list[dict[str, Any]] = Field(min_length=1)
    """Designs of round 0, each a recipes ``DesignConfig`` mapping (design: random, n, books_per_set, seed, ...)."""
    rounds: int = Field(1, ge=1)
    """Search rounds. Round r > 0 trains ``per_round`` new recipes: the analysis' mutations of the best and
    surrogate-guided picks (the ``mutate`` design over the top_k when the analysis is off)."""
    per_round: int = Field(8, ge=1)
    """Recipes added by each later round."""
    probe_shelf: ProbeShelf | None = None
    """A probe shelf (``bookmix.recipes.ProbeShelf``: langs, share, ...) read by every recipe of the campaign — every
    search round and the verification — at one fixed token share, so that the real books are what varies. Score it
    with ``probe_shelf`` tasks of the same settings (fact recall, logical transfer, cross-book synthesis)."""

    @field_validator("designs")
    @classmethod
    def _designs_valid(cls, designs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from bookmix.recipes.designs import parse_design

        for i, d in enumerate(designs):
            try:
                parse_design(d, where=f"[{i}]")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return designs


class ModelSection(_Section):
    """The model every trial trains: a named preset (optionally with explicit dimensions), or an existing Hugging Face
    causal LM that each trial continues pretraining on its recipe (fine-tune mode)."""

    preset: str = "nano"
    """Size preset (nano, micro, mini, small, medium, large); see ``bookmix.models.config.PRESETS``."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Explicit dimensions replacing the preset's (n_layer, n_head, d_model, block_size, ...)."""
    hf_base: Path | None = None
    """Fine-tune mode: a local Hugging Face causal-LM folder (config.json, weights, tokenizer.json) that every trial
    continues pretraining on its recipe instead of training a preset from scratch. Relative paths resolve beside the
    pipeline. Its tokenizer must be the library's (checked before any work)."""
    finetune: Literal["lora", "full"] = "lora"
    """Fine-tune mode only: ``lora`` trains low-rank adapters (base frozen, megabytes per trial); ``full`` every weight."""
    lora_r: int = Field(8, ge=1)
    """Fine-tune mode, LoRA: adapter rank. 8 is the common default: enough for continued pretraining on a few books."""
    seq_len: int | None = Field(None, ge=2)
    """Fine-tune mode: window length. None: the base's context, at most 1024 (bounds memory)."""

    @model_validator(mode="after")
    def _known(self) -> ModelSection:
        from bookmix.models.config import PRESETS, ModelConfig

        if self.preset not in PRESETS:
            raise ValueError(f"preset: unknown {self.preset!r}; choose one of {', '.join(PRESETS)}")
        unknown = sorted(set(self.overrides) - set(ModelConfig.__dataclass_fields__) - {"name"})
        if unknown:
            raise ValueError(f"overrides: unknown field(s) {', '.join(unknown)}")
        if self.hf_base is not None and self.overrides:
            raise ValueError("overrides: a fine-tuned base keeps its own shape; remove overrides or hf_base")
        try:
            self.resolve(vocab_size=None)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("model.")) from None
        return self

    def resolve(self, vocab_size: int | None) -> ModelConfig:
        """The ModelConfig of every trial, with the library's vocabulary (the preset's; unused in fine-tune mode)."""
        from bookmix.models.config import preset

        return preset(self.preset, vocab_size=vocab_size, **self.overrides)


class SeedsSection(_Section):
    """Seeds and the noise floor."""

    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    """Every recipe is trained once per seed listed here."""
    replicates: float = Field(0.1, ge=0, le=1)
    """Fraction of recipes trained again with other seeds, so the analysis knows the seed noise. 10% is a cheap,
    usable noise estimate; raise it when effects are small."""
    replicate_seeds: int = Field(2, ge=1)
    """Extra seeds each replicated recipe gets (2 gives three runs of the recipe: a standard error from each)."""


class EvalSection(_Section):
    """How every trained model is scored."""

    suite: Path | dict[str, Any]
    """Eval-suite YAML (``bookmix.evals``): tasks and the objective. Relative paths resolve beside the pipeline.
    An inline mapping is a suite written out as ``<campaign>/suite.yaml`` (its relative item paths then resolve
    against the campaign folder, e.g. ``storyworld/items/fact_recall.jsonl`` of a generated library)."""

    @field_validator("suite")
    @classmethod
    def _inline_suite_valid(cls, suite: Path | dict[str, Any]) -> Path | dict[str, Any]:
        if isinstance(suite, dict):
            from bookmix.evals.suite import Suite

            try:
                Suite.from_dict(suite)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return suite


class SelectionSection(_Section):
    """Which trials count as the best."""

    top_k: int = Field(10, ge=1)
    """Trials kept by objective: their weights survive retention and later stages (dialogue, export) use them."""
    keep_weights: Literal["top_k", "all"] = "top_k"
    """Retention: ``top_k`` deletes the weights of other completed trials (metrics and curves stay); ``all`` keeps all."""


class AnalysisSection(_Section):
    """The analysis of all results (effects of books, orders, sparsities; the proposal)."""

    enabled: bool = True
    """Run ``bookmix.analysis.analyze`` once the search is done."""
    options: AnalysisConfig = Field(default_factory=AnalysisConfig)
    """The analysis' settings (``bookmix.analysis.config.AnalysisConfig``: seed, n_boot, top, splits, constraints,
    ...), checked when the pipeline loads."""
    pilot: Path | None = None
    """A finished pilot campaign (its folder or findings.json): before training, the agreement its split halves measured
    is projected onto this campaign's trials (``bookmix run --plan`` prints it; below 0.5 it is a warning). Relative
    paths resolve beside the pipeline."""
    out_of_sample: int = Field(0, ge=0)
    """Fresh recipes from the first search design (another seed) trained after the search but never fitted: the
    analysis predicts their outcome and reports predicted vs measured (findings.json ``out_of_sample``), the check
    that the fitted patterns hold for recipes they were not fitted to. 0 turns it off; 8–16 give a usable Spearman."""


class VerificationSection(_Section):
    """Train the proposed recipe against random baselines over several seeds."""

    enabled: bool = False
    """Run the verification stage (needs the analysis and its proposal)."""
    baselines: int = Field(20, ge=1)
    """R: random recipes of the proposal's size trained as the baseline distribution. The recipe is the unit of the
    test (a baseline's seeds are averaged first), so R bounds what the verification can show: the exact rank test
    cannot go below 1/(R + 1). 20 lets it reach p < 0.05 (1/21 = 0.048)."""
    seeds: int = Field(2, ge=1)
    """S: seeds for the proposal and for every baseline; they average seed noise out of each recipe's score.
    Two halve the seed variance; more seeds buy less than more baselines once seed noise is below recipe spread."""


class TransferArm(_Section):
    """One model and training setting of a transfer study: a preset with overrides, TrainConfig fields over the
    campaign's ``train``."""

    name: str | None = None
    """Label in the report (default: the preset and what differs)."""
    preset: str | None = None
    """Size preset (nano, micro, mini, small, ...). None: the campaign's ``model.preset`` (and its overrides)."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """Explicit dimensions replacing the preset's (n_layer, n_head, d_model, block_size, ...)."""
    train: dict[str, Any] = Field(default_factory=dict)
    """TrainConfig fields replacing the campaign's (lr, max_tokens, micro_batch, ...)."""

    @field_validator("train")
    @classmethod
    def _train_valid(cls, train: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(set(train) - set(TrainConfig.model_fields))
        if bad:
            raise ValueError(f"{bad[0]}: not a train setting (see bookmix.training.TrainConfig)")
        try:
            TrainConfig.model_validate(train)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ValueError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
        return train

    @model_validator(mode="after")
    def _model_valid(self) -> TransferArm:
        try:  # an unknown preset or dimension fails here, before any work (None: the campaign's preset, checked there)
            ModelSection(preset=self.preset or "nano", overrides=self.overrides)
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self


class TransferSection(_Section):
    """Scale transfer: re-train some of the campaign's recipes at a larger target (and at other proxy settings) and
    check that the proxy's ranking holds there (``bookmix.analysis.transfer``). Runs after the analysis, or on a
    finished campaign with `bookmix transfer CAMPAIGN`."""

    enabled: bool = False
    """Run the transfer stage in `bookmix run` (after the analysis and verification)."""
    recipes: int = Field(24, ge=4)
    """Recipes re-trained: the proposal, the top and bottom quarter of the campaign's ranking and random ones. 16–32
    give Spearman and decision-accuracy intervals narrow enough to tell 0.5 from 0.9."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)
    """Seeds of every transfer trial at the target and at each proxy; two or more measure the noise a rank flip must
    beat. A seed the campaign already trained a recipe with at the same setting reuses that trial."""
    target: TransferArm = Field(default_factory=lambda: TransferArm(preset="small"))
    """The larger model (and training) the findings should hold for."""
    proxies: list[TransferArm] = Field(default_factory=list)
    """Further proxy settings to compare (smaller, another lr, fewer tokens); the campaign's own setting is always the
    first proxy. The findings name the proxy that transferred best."""
    min_spearman: float = Field(0.7, ge=-1, le=1)
    """A proxy transfers when its Spearman with the target reaches this ..."""
    min_accuracy: float = Field(0.75, ge=0, le=1)
    """... and it orders at least this share of recipe pairs as the target does."""

    @model_validator(mode="after")
    def _seeds_distinct(self) -> TransferSection:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: listed twice in {self.seeds}")
        return self


class DialogueSection(_Section):
    """A dialogue (SFT) layer on the top models once the search (and verification) is done."""

    enabled: bool = False
    """Fine-tune the ``top`` best trials on chat data (``bookmix.training.sft``), then run the suite on each again."""
    data: Path | None = None
    """Chat jsonl (``{"messages": [{"role", "content"}, ...]}`` a line). Default with a generated storyworld library:
    its ``<campaign>/storyworld/chat.jsonl``; required otherwise. Relative paths resolve beside the pipeline."""
    top: int = Field(3, ge=1)
    """How many of the best trials get a dialogue layer (at most selection.top_k: only their weights are kept)."""
    epochs: int = Field(SFT_DEFAULTS.epochs, ge=1)
    """Passes over the chat data. A few are needed for a small model to learn a couple hundred short Q/A pairs."""
    lr: float = Field(SFT_DEFAULTS.train.lr, gt=0)
    """Peak learning rate: a third of the pretraining default, so the layer does not wash out what the books taught."""
    heldout: float = Field(SFT_DEFAULTS.heldout_fraction, ge=0, lt=1)
    """Fraction of conversations kept out of training for the held-out chat loss (before/after)."""


class ReportSection(_Section):
    """The self-contained HTML report."""

    enabled: bool | Literal["auto"] = True
    """true: build it (the run fails before any work if the report module is missing); 'auto': build it when the
    report module is installed and log plainly when it is not; false: no report."""
    path: str = "report.html"
    """Report file, relative to the campaign folder."""


class ExecutorSection(_Section):
    """Where and how trials run."""

    kind: Literal["local", "ray"] = "local"
    """``local``: worker subprocesses on this machine. ``ray``: Ray tasks on a cluster (or a local Ray instance)."""
    address: str | None = None
    """Ray only: ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``; none starts a local Ray instance."""
    workers: int | None = Field(None, ge=1)
    """Concurrent units on the local executor. None: one per GPU, or 1 on CPU (two trials on two cores only fight)."""
    threads: int = Field(2, ge=1)
    """torch CPU threads per worker."""
    gpus_per_trial: float = Field(1.0, ge=0)
    """GPUs a Ray task asks for when the cluster has GPUs (fractions share one GPU between small trials)."""
    cpus_per_trial: float = Field(1.0, gt=0)
    """CPUs a Ray task asks for."""
    max_retries: int = Field(1, ge=0)
    """Re-runs of a unit whose worker crashed or ran out of memory before the trial is recorded failed (1: OOM twice
    fails). Ray also re-runs tasks lost with their node this many times."""
    trials_per_unit: int | Literal["auto"] = 1
    """Trials one worker process (or Ray task) runs, which amortises its start-up. ``auto``: on a GPU as many as fit
    and keep it busy (``bookmix.training.pack_size.auto_pack_size``), on a CPU 4 (start-up amortised, nothing gained
    beyond). Formerly ``pack``, still read with a warning."""
    packed: bool | None = None
    """How a unit's trials of one shape train. None: together as one packed model on a GPU (one step for all, where a
    micro model alone leaves most of the GPU idle), one after another on a CPU (packed steps are about as fast there,
    0.95–1.15× in bench/train_packed.py). true: packed on any device; false: always one after another."""

    @model_validator(mode="before")
    @classmethod
    def _old_pack_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pack" in data:
            import warnings

            if "trials_per_unit" in data:
                raise ValueError("pack: renamed trials_per_unit; give only trials_per_unit")
            warnings.warn("executor.pack is renamed executor.trials_per_unit; the old key will stop working",
                          FutureWarning, stacklevel=2)
            data = {("trials_per_unit" if k == "pack" else k): v for k, v in data.items()}
        return data

    @field_validator("trials_per_unit")
    @classmethod
    def _positive(cls, n: int | str) -> int | str:
        if isinstance(n, int) and n < 1:
            raise ValueError(f"must be ≥ 1 or auto, got {n}")
        return n


class TrackersSection(_Section):
    """Optional experiment trackers; all write locally inside the campaign folder."""

    tensorboard: bool = False
    """TensorBoard event files in ``<campaign>/tensorboard``."""
    mlflow: bool = False
    """MLflow runs in a local SQLite store ``<campaign>/mlflow.db``."""
    wandb: bool = False
    """Weights & Biases in offline mode (``<campaign>/wandb``; ``wandb sync`` uploads later)."""


class PipelineConfig(_Section):
    """One campaign: everything ``bookmix run`` needs."""

    campaign: CampaignSection
    library: LibrarySection
    search: SearchSection
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seeds: SeedsSection = Field(default_factory=SeedsSection)
    eval: EvalSection
    selection: SelectionSection = Field(default_factory=SelectionSection)
    analysis: AnalysisSection = Field(default_factory=AnalysisSection)
    verification: VerificationSection = Field(default_factory=VerificationSection)
    dialogue: DialogueSection = Field(default_factory=DialogueSection)
    transfer: TransferSection = Field(default_factory=TransferSection)
    report: ReportSection = Field(default_factory=ReportSection)
    executor: ExecutorSection = Field(default_factory=ExecutorSection)
    trackers: TrackersSection = Field(default_factory=TrackersSection)

    source: Path | None = Field(None, exclude=True)
    """The YAML file this was read from (relative paths resolve beside it)."""

    @model_validator(mode="after")
    def _verification_needs_analysis(self) -> PipelineConfig:
        if self.verification.enabled and not self.analysis.enabled:
            raise ValueError("verification.enabled: needs analysis.enabled (the proposal comes from the analysis)")
        return self

    @model_validator(mode="after")
    def _transfer_runnable(self) -> PipelineConfig:
        if self.transfer.enabled and self.model.hf_base is not None:
            raise ValueError("transfer.enabled: transfer re-trains bookmix presets; not available with model.hf_base")
        return self

    @model_validator(mode="after")
    def _out_of_sample_drawable(self) -> PipelineConfig:
        if self.analysis.out_of_sample and self.search.designs[0].get("design") in ("list", "mutate"):
            raise ValueError("analysis.out_of_sample: draws fresh recipes from search.designs[0], which must be a "
                             f"random design (not {self.search.designs[0].get('design')!r})")
        return self

    @model_validator(mode="after")
    def _dialogue_runnable(self) -> PipelineConfig:
        d = self.dialogue
        if not d.enabled:
            return self
        if self.model.hf_base is not None:
            raise ValueError("dialogue.enabled: the dialogue layer fine-tunes bookmix-trained models; with model.hf_base "
                             "fine-tune the exported hf/ folder instead, or set dialogue.enabled: false")
        if d.data is None and self.library.storyworld is None:
            raise ValueError("dialogue.data: required (a chat jsonl) unless the library is a generated storyworld")
        if d.top > self.selection.top_k:
            raise ValueError(f"dialogue.top: {d.top} exceeds selection.top_k {self.selection.top_k} (only the top_k "
                             "keep their weights)")
        return self

    # ---- resolved paths --------------------------------------------------------------------------------------
    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve_path(self, p: Path | str) -> Path:
        p = Path(os.path.expanduser(str(p)))
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def campaign_dir(self) -> Path:
        return self.resolve_path(self.campaign.out or Path("campaigns") / self.campaign.name)

    @property
    def library_dir(self) -> Path:
        if self.library.path is not None:
            return self.resolve_path(self.library.path)
        return self.campaign_dir / "library"

    @property
    def suite_path(self) -> Path:
        if isinstance(self.eval.suite, dict):
            return self.campaign_dir / "suite.yaml"
        return self.resolve_path(self.eval.suite)

    @property
    def dialogue_data(self) -> Path:
        """The chat data of the dialogue stage: the one given, else the generated storyworld's chat.jsonl."""
        if self.dialogue.data is not None:
            return self.resolve_path(self.dialogue.data)
        return self.campaign_dir / "storyworld" / "chat.jsonl"

    def trial_model(self, vocab_size: int) -> dict[str, Any]:
        """What every TrialSpec carries as ``model``: ``ModelConfig.to_dict()`` with the library's vocabulary, or in
        fine-tune mode the ``FinetuneConfig`` fields (``base`` absolute), which the worker tells apart by ``base``."""
        m = self.model
        if m.hf_base is None:
            return m.resolve(vocab_size).to_dict()
        ft = {"base": str(self.resolve_path(m.hf_base)), "method": m.finetune, "seq_len": m.seq_len}
        if m.finetune == "lora":
            ft["lora_r"] = m.lora_r
        return ft

    def write_inline_suite(self) -> None:
        """Write an inline suite where the workers read it (atomic; same content on every run)."""
        if isinstance(self.eval.suite, dict):
            import yaml

            from bookmix.utils.io import atomic_write_text

            atomic_write_text(self.suite_path, yaml.safe_dump(self.eval.suite, sort_keys=False))

    def resolved(self) -> dict[str, Any]:
        """The configuration with every path absolute: what the campaign folder stores as pipeline.yaml."""
        data = self.model_dump(mode="json")
        data["campaign"]["out"] = str(self.campaign_dir)
        data["library"]["path"] = str(self.library_dir)
        if not isinstance(self.eval.suite, dict):
            data["eval"]["suite"] = str(self.suite_path)
        if self.model.hf_base is not None:
            data["model"]["hf_base"] = str(self.resolve_path(self.model.hf_base))
        if self.dialogue.enabled:
            data["dialogue"]["data"] = str(self.dialogue_data)
        return data


def parse_pipeline(data: Any, source: Path | None = None) -> PipelineConfig:
    """Validate a mapping into a PipelineConfig; errors name the file and the field path."""
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}a pipeline must be a YAML mapping, got {type(data).__name__}")
    try:
        cfg = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(where + field_error(exc)) from None
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    cfg.source = source.resolve() if source else None
    return cfg


def load_pipeline(path: str | os.PathLike) -> PipelineConfig:
    """Read and validate a pipeline YAML before any work starts."""
    return parse_pipeline(read_yaml(path, missing="pipeline file not found"), Path(path))


def is_pipeline_yaml(path: str | os.PathLike) -> bool:
    """True when a YAML file looks like a pipeline (has the campaign and search sections)."""
    try:
        data = read_yaml(path)
    except (OSError, ConfigError):
        return False
    return isinstance(data, dict) and "campaign" in data and "search" in data
