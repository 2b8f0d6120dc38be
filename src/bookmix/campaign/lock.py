"""One driver per campaign: an exclusive lock on ``<campaign>/campaign.lock``.

The lock is an ``flock`` held for the driver's lifetime, so the kernel drops it the moment the driver dies (even by
kill -9): a stale lock from a dead process is simply taken over. The file also holds the owner's pid and host so that a
refused second run can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from bookmix.errors import BookmixError


class CampaignLocked(BookmixError):
    """Another driver is running this campaign."""


class CampaignLock:
    def __init__(self, campaign_dir: str | Path) -> None:
        self.path = Path(campaign_dir) / "campaign.lock"
        self._fd: int | None = None

    def acquire(self) -> CampaignLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            os.close(fd)
            who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
            raise CampaignLocked(
                f"{self.path.parent}: campaign is already running ({who}); wait for it or stop that process"
            ) from None
        # Ours now (a previous holder, if any, is dead): record who holds it.
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text() or "null")
        except (OSError, ValueError):
            return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CampaignLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_running(campaign_dir: str | Path) -> bool:
    """True while some driver holds the campaign's lock (used by status)."""
    path = Path(campaign_dir) / "campaign.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
