"""One torch thread for the packed trainer's tests: tiny models, a shared 2-core machine (see tests/training)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread (tests/conftest.py)."""
