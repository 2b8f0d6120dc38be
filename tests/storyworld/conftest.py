"""A storyworld generated once per session, shared by the storyworld tests (it takes well under a second)."""

from __future__ import annotations

import pytest

from bookmix.storyworld import Manifest, generate


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Manifest:
    return generate(tmp_path_factory.mktemp("storyworld") / "sw", books=20, seed=7)
