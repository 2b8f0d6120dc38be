"""Run one toy training in its own process (for the kill -9 resume test): ``python resume_worker.py OUT [DELAY]``.

DELAY seconds of sleep after each logged step slow the run down so the test can kill it mid-way; it changes no
number the run computes. Prints the TrainResult as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy import TOY, pattern_stream  # noqa: E402

from bookmix.training.config import TrainConfig  # noqa: E402
from bookmix.training.loop import train  # noqa: E402

CFG = TrainConfig(micro_batch=4, grad_accum=2, lr=3e-3, warmup=5, log_every=1, checkpoint_every=7,
                  checkpoint_seconds=0, eval_every=10, device="cpu")

THREADS = 1  # the same thread count in every process: fp32 sums in the same order


def run(out: Path, delay: float = 0.0) -> dict:
    def slow(record: dict) -> None:
        if "loss" in record:
            time.sleep(delay)

    result = train(TOY, CFG, pattern_stream(8000), out, heldout=pattern_stream(2000), on_log=slow)
    return result.to_dict()


if __name__ == "__main__":
    torch.set_num_threads(THREADS)
    print(json.dumps(run(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)))
