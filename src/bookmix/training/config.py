"""Training settings: one pydantic record, a docstring per field, defaults tuned for micro models.

The data budget is the stream's: the trainer reads the whole WindowSource (all the recipe's epochs) unless
``max_tokens`` caps it. Fields marked *operational* may change between a run and its resume; the others define the
mathematics of the run and must not.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bookmix.errors import ConfigError, field_error

# Settings that do not change what the run computes (only how fast, how often it is saved or reported): a resumed
# run may change them, e.g. to move to another device or to save more often. micro_batch is here because an
# out-of-memory backoff changes it mid-run while keeping the effective batch.
OPERATIONAL_FIELDS = frozenset(
    {"micro_batch", "eval_every", "eval_windows", "log_every", "checkpoint_every", "checkpoint_seconds", "compile", "device"}
)


class TrainConfig(BaseModel):
    """How one model is trained on one stream of windows."""

    # attribute docstrings become field descriptions: the CLI's help texts (cli/train_options.py)
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    micro_batch: int = Field(16, ge=1)
    """Windows per forward/backward pass. Halved automatically on a CUDA out-of-memory error (operational)."""
    grad_accum: int = Field(1, ge=1)
    """Micro-batches per optimizer step. The effective batch, micro_batch × grad_accum windows, is fixed for the run."""
    lr: float = Field(1e-3, gt=0)
    """Peak learning rate. 1e-3 suits 1M–30M models with AdamW (nanoGPT's small-model setting); use less above 100M."""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    """Final learning rate as a fraction of the peak (cosine and WSD decay to it); 0.1 as in Chinchilla."""
    warmup: float = Field(0.02, ge=0)
    """Warm-up length: below 1 a fraction of all steps, from 1 up a number of steps. Short, since micro models are stable."""
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    """Learning-rate shape after warm-up: cosine decay, warmup-stable-decay (flat, then a linear decay), or constant."""
    decay_fraction: float = Field(0.2, gt=0, le=1)
    """WSD only: the fraction of all steps spent decaying at the end (20% is the usual choice in the WSD papers)."""
    weight_decay: float = Field(0.1, ge=0)
    """AdamW decoupled weight decay, on matrices only (not on norm gains)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas; β2 = 0.95 keeps small-batch training stable (GPT-3, LLaMA)."""
    eps: float = Field(1e-8, gt=0)
    """AdamW epsilon."""
    grad_clip: float = Field(1.0, ge=0)
    """Clip the global gradient norm to this value; 0 turns clipping off."""
    max_tokens: int | None = Field(None, ge=1)
    """Cap on trained tokens (whole windows). None: the whole stream, i.e. every epoch of the recipe."""
    eval_every: int = Field(0, ge=0)
    """Measure the held-out loss every this many steps (and always at the end); 0: only at the end (operational)."""
    eval_windows: int = Field(64, ge=1)
    """Held-out windows scored per measurement, spread evenly over the held-out stream (operational)."""
    log_every: int = Field(10, ge=1)
    """Steps between curve records. Logging reads the loss back from the device, the only host sync (operational)."""
    checkpoint_every: int = Field(0, ge=0)
    """Save a checkpoint every this many steps; 0: by time only (operational)."""
    checkpoint_seconds: float = Field(600.0, ge=0)
    """Save a checkpoint when this many seconds passed since the last one; 0: by steps only (operational)."""
    seed: int = 0
    """Seeds the weight initialisation and every random generator the run touches."""
    compile: bool = False
    """torch.compile the model: faster steps on GPU after a first slow one (operational)."""
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    """Compute precision: 'auto' is bf16 autocast on CUDA (weights stay fp32) and fp32 on CPU."""
    device: str = "auto"
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda', 'cuda:1', ... (operational)."""

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"each beta must be in [0, 1), got {v}")
        return v

    @field_validator("warmup")
    @classmethod
    def _warmup_steps_whole(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError(f"from 1 up warmup counts steps and must be whole, got {v}")
        return v

    @property
    def windows_per_step(self) -> int:
        return self.micro_batch * self.grad_accum

    def warmup_steps(self, total_steps: int) -> int:
        return int(self.warmup) if self.warmup >= 1 else round(self.warmup * total_steps)

    def math_fields(self) -> dict:
        """The settings that define what the run computes (compared when resuming)."""
        data = self.model_dump(mode="json", exclude=set(OPERATIONAL_FIELDS))
        data["windows_per_step"] = self.windows_per_step
        data.pop("grad_accum")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Validate a mapping, turning pydantic's error into a ConfigError that names the field."""
        from pydantic import ValidationError

        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(field_error(exc, "train")) from None


def _sft_train_defaults() -> TrainConfig:
    # A third of the pretraining default: fine-tuning moves a trained model, it should not wash out what the books
    # taught. No weight decay: a few hundred steps from trained weights have nothing to regularise toward zero.
    # 5% warm-up: the new token rows start from the mean embedding and their first gradients are large.
    return TrainConfig(micro_batch=16, lr=3e-4, warmup=0.05, weight_decay=0.0, checkpoint_seconds=300)


class SFTConfig(BaseModel):
    """How a model is fine-tuned on chat data (``training.sft``); the CLI's and the pipeline's defaults come from here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(3, ge=1)
    """Passes over the training conversations. Storyworld's ~200 short Q/A pairs need a few to be learned."""
    heldout_fraction: float = Field(0.1, ge=0, lt=1)
    """Conversations kept out of training for the held-out chat loss (at least one when there are two or more)."""
    train: TrainConfig = Field(default_factory=_sft_train_defaults)
    """Optimizer, schedule, batch (micro_batch × grad_accum conversations a step), seed, device."""

    def math_fields(self) -> dict:
        return {"epochs": self.epochs, "heldout_fraction": self.heldout_fraction, **self.train.math_fields()}


SFT_DEFAULTS = SFTConfig()
"""The defaults, read by ``bookmix sft`` and the pipeline's ``dialogue`` section."""
