"""The loss curve, OUT/curve.jsonl: one JSON record per logged step, appended as training goes.

On resume the file is cut back to the records of the steps the checkpoint holds, so that the steps trained again
after a kill are not recorded twice; a torn last line from a kill is dropped the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bookmix.utils.io import atomic_write_text

CURVE = "curve.jsonl"


def read_curve(path: Path) -> list[dict]:
    """Records of a curve file; a torn or unreadable line (a kill mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class Curve:
    """Append-only writer over OUT/curve.jsonl, starting from the records up to ``keep_until_step``."""

    def __init__(self, path: Path, keep_until_step: int) -> None:
        self.path = Path(path)
        kept = [r for r in read_curve(self.path) if r.get("step", math.inf) <= keep_until_step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
