"""Kill -9 in the middle of a run, resume, and end bit for bit where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from bookmix.training.checkpoint import read_checkpoint, recover, save_checkpoint
from bookmix.training.curve import read_curve

WORKER = Path(__file__).with_name("resume_worker.py")


def _run(out: Path, delay: float = 0.0) -> dict:
    done = subprocess.run([sys.executable, str(WORKER), str(out), str(delay)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _run_here(out: Path) -> dict:
    """The uninterrupted reference, in this process with the worker's thread count (one interpreter start less)."""
    import torch

    from . import resume_worker

    threads = torch.get_num_threads()
    torch.set_num_threads(resume_worker.THREADS)
    try:
        return json.loads(json.dumps(resume_worker.run(out)))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_killed_run_resumes_bit_identical(tmp_path):
    reference = _run_here(tmp_path / "ref")

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(out), "0.03"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:  # wait for the second checkpoint, then kill without warning
            ckpt = read_checkpoint(out) if (out / "checkpoint" / "state.json").exists() else None
            if ckpt is not None and ckpt.state["step"] >= 14:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "result.json").exists(), "the run finished before the kill: the test proved nothing"
    killed_at = max(r["step"] for r in read_curve(out / "curve.jsonl"))

    resumed = _run(out)
    assert resumed["status"] == reference["status"] == "completed"
    assert resumed["final_loss"] == reference["final_loss"]  # bit for bit, not approximately
    assert resumed["heldout_loss"] == reference["heldout_loss"]
    assert (resumed["steps"], resumed["tokens"]) == (reference["steps"], reference["tokens"])
    a, b = load_file(tmp_path / "ref" / "checkpoint" / "model.safetensors"), load_file(out / "checkpoint" / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)

    # The curve has each step once, and the same values as the uninterrupted run's.
    ref_curve, curve = read_curve(tmp_path / "ref" / "curve.jsonl"), read_curve(out / "curve.jsonl")
    assert killed_at < reference["steps"]
    assert [r["step"] for r in curve] == [r["step"] for r in ref_curve]
    assert [r["loss"] for r in curve] == [r["loss"] for r in ref_curve]


def _dummy_checkpoint(out: Path, step: int) -> None:
    import torch

    from bookmix.models.model import LM

    from .toy import TOY

    model = LM(TOY)
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(out, model, opt, {"model": TOY.to_dict()}, {"step": step})


@pytest.mark.parametrize("stage", ["new-written", "old-moved-aside", "new-half-written"])
def test_interrupted_checkpoint_swap_recovers(tmp_path, stage):
    _dummy_checkpoint(tmp_path, 7)
    _dummy_checkpoint(tmp_path, 14)
    ckpt, new, old = tmp_path / "checkpoint", tmp_path / ".checkpoint.new", tmp_path / ".checkpoint.old"
    # Recreate the moments a kill can interrupt: a complete new folder beside the old one, ...
    if stage == "new-written":
        ckpt.rename(new)  # step 14 complete in .new; the kill came before any rename
        _dummy_checkpoint(tmp_path / "x", 7)
        (tmp_path / "x" / "checkpoint").rename(ckpt)
        ckpt.rename(old)
        expected = 14
    elif stage == "old-moved-aside":
        ckpt.rename(old)  # old moved aside, new not yet renamed into place, and no complete new folder
        expected = 14
    else:
        ckpt.rename(old)
        new.mkdir()
        (new / "model.safetensors").write_bytes(b"torn")
        expected = 14
    recover(tmp_path)
    assert read_checkpoint(tmp_path).state["step"] == expected
    assert not new.exists() and not old.exists()
