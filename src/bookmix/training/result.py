"""What a finished training run reports, stored as OUT/result.json (its presence marks the run finished)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bookmix.errors import BookmixError
from bookmix.utils.io import atomic_write_json

RESULT = "result.json"


@dataclass(frozen=True)
class TrainResult:
    final_loss: float | None
    """Training loss of the last step taken (None if no step ran)."""
    heldout_loss: float | None
    """Held-out loss at the end (None without a held-out stream, or after divergence)."""
    steps: int
    tokens: int
    seconds: float
    """Wall time of the training itself, summed over resumed sessions."""
    tokens_per_s: float
    diverged_at_step: int | None
    """0-based optimizer step whose loss was NaN or infinite; None when the run completed."""
    status: Literal["completed", "diverged"]
    paths: dict[str, str] = field(default_factory=dict)
    """'checkpoint', 'curve', 'result' → files of this run."""
    micro_batch: int | None = None
    """Micro-batch in use at the end: smaller than asked after an out-of-memory backoff."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, out_dir: Path) -> None:
        atomic_write_json(Path(out_dir) / RESULT, self.to_dict())

    @classmethod
    def load(cls, out_dir: Path) -> TrainResult | None:
        return read_result(cls, Path(out_dir) / RESULT)


def read_result(cls: Any, path: Path) -> Any:
    """A result dataclass stored as JSON (fields it does not know are left out), or None before it is written."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
    except (json.JSONDecodeError, TypeError) as exc:
        raise BookmixError(f"{path}: unreadable result ({exc})") from None
