"""Every forecast test writes calibrations into its own temporary BOOKMIX_HOME, never the user's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def bookmix_home(tmp_path, monkeypatch):
    home = tmp_path / "bookmix-home"
    monkeypatch.setenv("BOOKMIX_HOME", str(home))
    return home
