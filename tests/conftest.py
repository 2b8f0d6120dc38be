"""Fixtures shared by every room's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookmix.training.device import torch_threads

SHARED_BOOKS = Path(__file__).resolve().parents[1].parent / "shared" / "books"


@pytest.fixture(scope="session")
def shared_books() -> Path:
    """The 370 real public-domain books beside the checkout; tests that need them skip where they are absent."""
    if not (SHARED_BOOKS / "catalog.csv").exists():
        pytest.skip(f"real books not found at {SHARED_BOOKS} (../shared/books beside the checkout)")
    return SHARED_BOOKS


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored after: the rooms with tiny models make it autouse in their conftest."""
    with torch_threads(1):
        yield
