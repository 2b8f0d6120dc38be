"""One torch thread for these tests: the models are tiny, and on a shared 2-core machine a second thread spinning
against other processes makes small ops many times slower, not faster. Restored after each test."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
