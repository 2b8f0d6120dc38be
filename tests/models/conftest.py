"""One torch thread for these tests: the models are tiny, and on a shared 2-core machine a second thread spinning
against other processes makes small ops many times slower, not faster. Restored after each test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here on one torch thread (tests/conftest.py)."""
