"""What keeps a pack on a CPU as fast as its models one after another: bounded activations, malloc that keeps memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from bookmix.models.config import preset
from bookmix.training.pack_size import MAX_PACK, PACK_CPU_ACTIVATION_BYTES, cpu_pack_cap


def test_the_cpu_cap_bounds_the_widest_activation_of_a_packed_forward():
    nano, micro = preset("nano", vocab_size=4096), preset("micro", vocab_size=4096)
    for cfg in (nano, micro):
        for mb, t in ((8, 128), (16, 256)):
            cap = cpu_pack_cap(cfg, mb, t)
            widest = 4 * mb * t * max(cfg.ff_dim, cfg.d_model)  # one model's, at a whole micro-batch
            assert 1 <= cap <= MAX_PACK and (cap * widest <= PACK_CPU_ACTIVATION_BYTES or cap == 1)
            assert cap == MAX_PACK or (cap + 1) * widest > PACK_CPU_ACTIVATION_BYTES  # the largest that fits
    assert cpu_pack_cap(nano, 8, 128) == 21 and cpu_pack_cap(micro, 8, 128) == 8


FAULTS = textwrap.dedent(
    """
    import ctypes, resource, torch
    from bookmix.training.device import keep_host_memory

    class MallInfo2(ctypes.Structure):  # glibc >= 2.33
        _fields_ = [(n, ctypes.c_size_t) for n in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    kept = keep_host_memory()
    block = torch.empty(6 << 20).fill_(1.0)  # 24 MiB
    mapped = libc.mallinfo2().hblkhd  # bytes in blocks glibc got from mmap, handed back on free
    del block

    sizes = [(1 + i % 7) << 20 for i in range(12)]  # 4-28 MiB float32 blocks, 190 MiB held at once

    def step():  # what a training step does with its activations: allocate them all, then free them all
        held = [torch.empty(n).fill_(1.0) for n in sizes]
        del held

    for _ in range(3):  # warm up: the heap grows to its working size
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    print(kept, mapped, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_kept_host_memory_serves_activations_from_the_heap_without_faults():
    def run(flag: str) -> tuple[str, int, int]:
        env = {**os.environ, "BOOKMIX_KEEP_HOST_MEMORY": flag}
        out = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"no glibc mallinfo2 here: {out.stderr.strip().splitlines()[-1]}")
        kept, mapped, faults = out.stdout.split()
        return kept, int(mapped), int(faults)

    kept, mapped, faults = run("1")
    off_kept, off_mapped, _ = run("0")
    assert kept == "True" and off_kept == "False"
    assert off_mapped >= 24 << 20  # glibc's default: a fresh mmap for a 24 MiB block, unmapped again on free
    assert mapped < 24 << 20  # kept: from the heap, reused step after step
    pages_per_step = sum((1 + i % 7) << 20 for i in range(12)) * 4 // 4096
    assert faults < pages_per_step / 2  # ten steps fault in less than half of one step's pages
