"""Measured throughput per device and preset, written by `bookmix bench` and read by the forecast.

One JSON file, ``$BOOKMIX_HOME/calibration.json`` (default ``~/.cache/bookmix``), holding one record per
(device, preset). A record carries what was measured and how: device, preset, seq_len, micro_batch, dtype,
tokens_per_s, flops_per_s, mfu, peak_flops, compile, torch_version, measured_at; the packed-training bench adds
pack and pack_speedup. Saving merges into the existing record of the same key, so each bench adds its own figures
without erasing the others'. Writes are atomic and serialised by a lock file, so two benches never lose a record.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

from bookmix.errors import BookmixError
from bookmix.utils.io import atomic_write_json

RECORD_KEYS = (
    "device",
    "preset",
    "seq_len",
    "micro_batch",
    "dtype",
    "tokens_per_s",
    "flops_per_s",
    "mfu",
    "peak_flops",
    "compile",
    "torch_version",
    "measured_at",
)
POSITIVE_KEYS = ("seq_len", "micro_batch", "tokens_per_s", "flops_per_s", "peak_flops", "pack", "pack_speedup")


def bookmix_home() -> Path:
    return Path(os.environ.get("BOOKMIX_HOME") or Path.home() / ".cache" / "bookmix")


def calibration_path() -> Path:
    return bookmix_home() / "calibration.json"


def _key(device: str, preset: str) -> str:
    return f"{device}/{preset}"


def _read(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BookmixError(f"{path}: not a readable calibration file ({exc}); delete it and run `bookmix bench` again") from exc
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, dict):
        raise BookmixError(f"{path}: missing the 'records' object; delete it and run `bookmix bench` again")
    return records


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the file for the read-modify-write (POSIX; elsewhere the atomic rename suffices)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def validate_record(record: dict) -> dict:
    """Check a record's keys and values; return a clean copy (measured_at filled in if absent)."""
    if not isinstance(record, dict):
        raise BookmixError(f"calibration record: expected an object, got {type(record).__name__}")
    for key in ("device", "preset"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise BookmixError(f"calibration record.{key}: must be a non-empty string, got {record.get(key)!r}")
    for key in POSITIVE_KEYS:
        if key in record and record[key] is not None:
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise BookmixError(f"calibration record.{key}: must be a positive number, got {value!r}")
    mfu = record.get("mfu")
    if mfu is not None and (not isinstance(mfu, int | float) or not 0 < mfu <= 1.5):
        raise BookmixError(f"calibration record.mfu: must be in (0, 1.5], got {mfu!r}")
    clean = dict(record)
    clean.setdefault("measured_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return clean


def save_calibration(record: dict) -> Path:
    """Store (merge) one record under its (device, preset); returns the file's path."""
    record = validate_record(record)
    path = calibration_path()
    with _locked(path):
        records = _read(path)
        key = _key(record["device"], record["preset"])
        records[key] = {**records.get(key, {}), **record}
        atomic_write_json(path, {"version": 1, "records": records})
    return path


def load_calibration(device: str, preset: str | None = None) -> dict | None:
    """The record for (device, preset); with no preset, the most recently measured record of the device; else None."""
    records = _read(calibration_path())
    if preset is not None:
        return records.get(_key(device, preset))
    mine = [r for r in records.values() if r.get("device") == device]
    return max(mine, key=lambda r: str(r.get("measured_at", ""))) if mine else None


def load_calibrations(device: str | None = None) -> list[dict]:
    """Every record (of one device, if given), for `bookmix estimate --list-calibrations` and the dashboard."""
    records = _read(calibration_path()).values()
    return [r for r in records if device is None or r.get("device") == device]
