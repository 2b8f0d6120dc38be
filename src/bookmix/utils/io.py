"""Atomic file writes (a temporary name in the same folder, fsync, rename) and the one YAML reader.

Every write that matters goes through here, so that killing a process at any moment leaves either the old file or
the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside ``path`` durable."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on a clean exit fsync it and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes 0600 files; give the result the permissions an ordinary open() would (0666 less the umask).
    os.chmod(tmp, 0o666 & ~_umask())
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=False, ensure_ascii=False) + "\n")


def read_yaml(path: str | os.PathLike, missing: str = "file not found") -> Any:
    """The one YAML reader: the parsed document of ``path``; a ConfigError names the file when it is missing
    (``missing`` says what it should have been) or not YAML."""
    import yaml

    from bookmix.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".splitlines()[0]) from None


def json_object(line: str, where: str) -> dict[str, Any]:
    """One JSON object (a line of a .jsonl file); errors name ``where`` (``FILE:LINE``) and the reason."""
    import json

    from bookmix.errors import BookmixError

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BookmixError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise BookmixError(f"{where}: must be a JSON object, got {type(obj).__name__}")
    return obj
