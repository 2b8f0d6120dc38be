"""train_pack: K packed models are K separate train() runs — same curves, same weights, same files, same resume."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from bookmix.errors import BookmixError
from bookmix.models.config import preset
from bookmix.models.export import export_hf
from bookmix.recipes.stream import ArrayWindows
from bookmix.training.checkpoint import load_model
from bookmix.training.config import TrainConfig
from bookmix.training.curve import read_curve
from bookmix.training.faults import FaultInjector
from bookmix.training.loop import train
from bookmix.training.pack_size import MAX_PACK, auto_pack_size, pack_bytes, pack_size
from bookmix.training.packed import train_pack

from .data import FAST, SEQ, TOY, heldout, phrase_tokens, streams

TOL = {"rel": 1e-4, "abs": 1e-5}


def _singles(tmp_path, cfg=FAST, seeds=(0, 1, 2)):
    held = heldout()
    return [train(TOY, cfg.model_copy(update={"seed": s}), st, tmp_path / f"single{k}", heldout=held)
            for k, (s, st) in enumerate(zip(seeds, streams(), strict=True))]


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(path / "checkpoint" / "model.safetensors")


def _assert_same_run(packed_dir, single_dir, weight_tol=2e-5):
    """Same curve (steps, tokens, lr exactly; loss and grad norm to fp32 rounding), same weights, same files."""
    a, b = read_curve(packed_dir / "curve.jsonl"), read_curve(single_dir / "curve.jsonl")
    assert [(r["step"], r["tokens"], r["lr"]) for r in a] == [(r["step"], r["tokens"], r["lr"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        assert ra["loss"] == pytest.approx(rb["loss"], **TOL)
        assert ra["grad_norm"] == pytest.approx(rb["grad_norm"], **TOL)
        assert ra.get("heldout_loss", 0) == pytest.approx(rb.get("heldout_loss", 0), **TOL)
    wa, wb = _weights(packed_dir), _weights(single_dir)
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=0, atol=weight_tol, msg=name)
    assert sorted(p.name for p in packed_dir.iterdir()) == sorted(p.name for p in single_dir.iterdir())
    for name in ("model.safetensors", "optimizer.pt"):  # one model's tensors, not the whole pack's storage
        size_p, size_s = ((d / "checkpoint" / name).stat().st_size for d in (packed_dir, single_dir))
        assert size_p == pytest.approx(size_s, rel=0.02), name
    ca = json.loads((packed_dir / "checkpoint" / "config.json").read_text())
    cb = json.loads((single_dir / "checkpoint" / "config.json").read_text())
    assert ca == cb
    sa = json.loads((packed_dir / "checkpoint" / "state.json").read_text())
    sb = json.loads((single_dir / "checkpoint" / "state.json").read_text())
    assert {k: sa[k] for k in ("step", "tokens", "micro_batch", "grad_accum")} == {
        k: sb[k] for k in ("step", "tokens", "micro_batch", "grad_accum")}


def test_pack_equals_separate_runs_with_different_lengths_and_seeds(tmp_path):
    logs = []
    results = train_pack(TOY, FAST, streams(), [tmp_path / f"pack{k}" for k in range(3)], heldouts=heldout(),
                         seeds=[0, 1, 2], on_log=logs.append, metas=[{"recipe_id": f"r{k}"} for k in range(3)])
    singles = _singles(tmp_path)
    assert [r.steps for r in results] == [s.steps for s in singles] == [12, 8, 11]  # the short one left early
    for k, (r, s) in enumerate(zip(results, singles, strict=True)):
        assert r.status == s.status == "completed" and r.tokens == s.tokens
        assert r.final_loss == pytest.approx(s.final_loss, **TOL)
        assert r.heldout_loss == pytest.approx(s.heldout_loss, **TOL)
        meta = json.loads((tmp_path / f"pack{k}" / "checkpoint" / "config.json").read_text())["meta"]
        assert meta == {"recipe_id": f"r{k}"}
        (tmp_path / f"pack{k}" / "checkpoint" / "config.json").write_text(  # compare the rest of the config
            (tmp_path / f"single{k}" / "checkpoint" / "config.json").read_text())
        _assert_same_run(tmp_path / f"pack{k}", tmp_path / f"single{k}")
    # the optimizer state is a torch AdamW state dict, moment for moment the single run's
    opt_p = torch.load(tmp_path / "pack0" / "checkpoint" / "optimizer.pt", weights_only=True)["optimizer"]
    opt_s = torch.load(tmp_path / "single0" / "checkpoint" / "optimizer.pt", weights_only=True)["optimizer"]
    assert opt_p["state"].keys() == opt_s["state"].keys() and opt_p["param_groups"] == opt_s["param_groups"]
    for i in opt_s["state"]:
        assert float(opt_p["state"][i]["step"]) == float(opt_s["state"][i]["step"]) == 12
        torch.testing.assert_close(opt_p["state"][i]["exp_avg_sq"], opt_s["state"][i]["exp_avg_sq"], rtol=1e-3, atol=1e-9)
    # the seeds differ, so the models do: the pack really trained three models
    assert results[0].final_loss != pytest.approx(results[2].final_loss, rel=1e-3)
    starts = [e for e in logs if e.get("event") == "start"]
    assert sorted(e["pack_index"] for e in starts) == [0, 1, 2] and {e["pack"] for e in starts} == {3}
    assert {r["pack_index"] for r in logs if "loss" in r} == {0, 1, 2}


def test_a_nan_in_one_model_drops_only_that_one(tmp_path):
    clean = train_pack(TOY, FAST, streams(), [tmp_path / f"clean{k}" for k in range(3)], seeds=[0, 1, 2])
    faults = [None, FaultInjector(nan_at_step=5), None]
    logs = []
    hurt = train_pack(TOY, FAST, streams(), [tmp_path / f"hurt{k}" for k in range(3)], seeds=[0, 1, 2],
                      faults=faults, on_log=logs.append)
    assert hurt[1].status == "diverged" and hurt[1].diverged_at_step == 5 and hurt[1].steps == 5
    alone = train(TOY, FAST.model_copy(update={"seed": 1}), streams()[1], tmp_path / "alone", faults=faults[1])
    assert (alone.status, alone.diverged_at_step, alone.steps, alone.tokens) == ("diverged", 5, 5, hurt[1].tokens)
    assert hurt[1].final_loss == pytest.approx(alone.final_loss, **TOL)
    events = [json.loads(line) for line in (tmp_path / "hurt1" / "events.jsonl").read_text().splitlines()]
    assert events == [{"event": "diverged", "step": 5, "checkpoint_step": 5}]
    assert any(e.get("event") == "diverged" and e["pack_index"] == 1 for e in logs)
    for k in (0, 2):  # the others went on to the end and learned exactly what they learn without the fault
        assert hurt[k].status == "completed" and hurt[k].steps == clean[k].steps
        assert hurt[k].final_loss == pytest.approx(clean[k].final_loss, **TOL)
        _assert_same_run(tmp_path / f"hurt{k}", tmp_path / f"clean{k}", weight_tol=1e-6)
    # the diverged model's last good checkpoint is intact and finite
    model, _, _ = load_model(tmp_path / "hurt1")
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _Killed(Exception):
    pass


def test_a_killed_pack_resumes_to_where_an_uninterrupted_one_ends(tmp_path):
    dirs = [tmp_path / f"m{k}" for k in range(3)]

    def die_at_step_8(record):
        if record.get("step") == 8 and "loss" in record:  # after step 5's checkpoint, mid-way to step 10's
            raise _Killed

    with pytest.raises(_Killed):
        train_pack(TOY, FAST, streams(), dirs, seeds=[0, 1, 2], on_log=die_at_step_8)
    assert json.loads((dirs[0] / "checkpoint" / "state.json").read_text())["step"] == 5
    resumed = train_pack(TOY, FAST, streams(), dirs, seeds=[0, 1, 2])
    whole = train_pack(TOY, FAST, streams(), [tmp_path / f"w{k}" for k in range(3)], seeds=[0, 1, 2])
    for k in range(3):
        assert resumed[k].steps == whole[k].steps and resumed[k].tokens == whole[k].tokens
        assert resumed[k].final_loss == whole[k].final_loss  # bit for bit: same pack, same arithmetic
        _assert_same_run(dirs[k], tmp_path / f"w{k}", weight_tol=0)
        steps = [r["step"] for r in read_curve(dirs[k] / "curve.jsonl")]
        assert steps == sorted(set(steps))  # nothing recorded twice


def test_a_packed_checkpoint_resumes_in_train_and_exports(tmp_path):
    dirs = [tmp_path / f"m{k}" for k in range(2)]

    def die_at_step_6(record):
        if record.get("step") == 6 and "loss" in record:
            raise _Killed

    with pytest.raises(_Killed):
        train_pack(TOY, FAST, streams()[:2], dirs, heldouts=heldout(), on_log=die_at_step_6)
    # the rest of the system cannot tell: the single trainer picks model 1 up where the pack left it
    alone = train(TOY, FAST, streams()[1], dirs[1], heldout=heldout())
    reference = train(TOY, FAST, streams()[1], tmp_path / "reference", heldout=heldout())
    assert alone.steps == reference.steps == 8
    assert alone.final_loss == pytest.approx(reference.final_loss, **TOL)
    _assert_same_run(dirs[1], tmp_path / "reference")
    # and the pack finishes model 0 from a checkpoint the single trainer could equally have written
    rest = train_pack(TOY, FAST, streams()[:2], dirs, heldouts=heldout())
    assert rest[1] == alone and rest[0].steps == 12
    out = export_hf(dirs[0], tmp_path / "hf")
    exported = load_file(out / "model.safetensors")
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == TOY.vocab_size and config["num_hidden_layers"] == TOY.n_layer
    torch.testing.assert_close(exported["model.norm.weight"], _weights(dirs[0])["model.norm.weight"])


def test_a_single_checkpoint_resumes_in_a_pack(tmp_path):
    def die_at_step_6(record):
        if record.get("step") == 6 and "loss" in record:
            raise _Killed

    with pytest.raises(_Killed):
        train(TOY, FAST, streams()[0], tmp_path / "m0", on_log=die_at_step_6)
    packed = train_pack(TOY, FAST, streams()[:2], [tmp_path / "m0", tmp_path / "m1"])
    reference = train(TOY, FAST, streams()[0], tmp_path / "reference")
    assert packed[0].steps == 12 and packed[0].final_loss == pytest.approx(reference.final_loss, **TOL)
    _assert_same_run(tmp_path / "m0", tmp_path / "reference")


def test_finished_models_are_not_trained_again(tmp_path):
    dirs = [tmp_path / f"m{k}" for k in range(3)]
    done = train(TOY, FAST, streams()[1], dirs[1])  # one trial finished alone before the pack ran
    stamp = (dirs[1] / "checkpoint" / "model.safetensors").stat().st_mtime_ns
    logs = []
    first = train_pack(TOY, FAST, streams(), dirs, on_log=logs.append)
    assert first[1] == done and (dirs[1] / "checkpoint" / "model.safetensors").stat().st_mtime_ns == stamp
    assert {e["pack_index"] for e in logs if e.get("event") == "start"} == {0, 2}
    assert [e["pack"] for e in logs if e.get("event") == "start"] == [2, 2]
    again = train_pack(TOY, FAST, streams(), dirs)
    assert again == first


def test_out_of_memory_halves_the_pack_micro_batch_and_keeps_the_effective_batch(tmp_path):
    calm = train_pack(TOY, FAST, streams()[:2], [tmp_path / "a0", tmp_path / "a1"])
    tight = train_pack(TOY, FAST, streams()[:2], [tmp_path / "b0", tmp_path / "b1"],
                       faults=[FaultInjector(oom_above_micro_batch=2), None])
    assert [r.micro_batch for r in tight] == [2, 2] and [r.micro_batch for r in calm] == [4, 4]
    for k in range(2):
        assert tight[k].steps == calm[k].steps
        assert tight[k].final_loss == pytest.approx(calm[k].final_loss, **TOL)
        events = [json.loads(line) for line in (tmp_path / f"b{k}" / "events.jsonl").read_text().splitlines()]
        assert events == [{"event": "oom_backoff", "step": 0, "micro_batch": 2, "grad_accum": 4}]


def test_bad_input_is_a_clear_error(tmp_path):
    s = streams()
    with pytest.raises(BookmixError, match="out_dirs: 2 given for 3 streams"):
        train_pack(TOY, FAST, s, [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(BookmixError, match="same folder"):
        train_pack(TOY, FAST, s[:2], [tmp_path / "a", tmp_path / "x" / ".." / "a"])
    with pytest.raises(BookmixError, match="seeds: 1 given"):
        train_pack(TOY, FAST, s[:2], [tmp_path / "a", tmp_path / "b"], seeds=[1])
    with pytest.raises(BookmixError, match=r"streams\[1\]: seq_len 16 differs"):
        train_pack(TOY, FAST, [s[0], ArrayWindows(phrase_tokens(900, 1), 16)], [tmp_path / "c", tmp_path / "d"])
    with pytest.raises(BookmixError, match=r"heldouts\[0\]: seq_len 16 differs"):
        train_pack(TOY, FAST, s[:1], [tmp_path / "e"], heldouts=ArrayWindows(phrase_tokens(900, 1), 16))
    with pytest.raises(BookmixError, match="at least one stream"):
        train_pack(TOY, FAST, [], [])
    # resuming a folder with another model's mathematics is refused, naming the field
    train_pack(TOY, FAST.model_copy(update={"max_tokens": 20 * SEQ}), s[:1], [tmp_path / "f"])
    (tmp_path / "f" / "result.json").unlink()
    with pytest.raises(BookmixError, match="cannot resume: train.lr"):
        train_pack(TOY, FAST.model_copy(update={"max_tokens": 20 * SEQ, "lr": 1e-2}), s[:1], [tmp_path / "f"])


def test_pack_size_follows_memory_and_compute():
    nano, micro, small = preset("nano"), preset("micro"), preset("small", vocab_size=50304)
    big = 1 << 40
    # plenty of memory: compute decides: a few dozen nanos, about 8 micros, no packing for a GPT-2-small
    assert 30 <= pack_size(nano, 16, 256, "bf16", big) <= MAX_PACK
    assert 6 <= pack_size(micro, 16, 256, "bf16", big) <= 10
    assert pack_size(small, 16, 1024, "bf16", big) == 1
    # memory decides when it is short: exactly as many as the estimate fits, never less than one
    three = pack_bytes(nano, 3, 16, 256, "bf16")
    assert pack_size(nano, 16, 256, "bf16", three) == 3
    assert pack_size(nano, 16, 256, "bf16", three - 1) == 2
    assert pack_size(nano, 16, 256, "bf16", 1 << 20) == 1
    assert pack_size(nano, 4, 256, "bf16", three) > 3  # a smaller micro-batch leaves room for more models
    # auto_pack_size: 1 on a CPU; planning for a GPU's memory gives pack_size's answer
    cfg = TrainConfig(device="cpu", dtype="bfloat16", micro_batch=16)
    assert auto_pack_size(nano, cfg) == 1
    assert auto_pack_size(nano, cfg, available=three) == 3


def test_a_pack_above_the_cpu_cap_trains_as_sub_packs_with_the_same_results(tmp_path, monkeypatch):
    """On a CPU a pack bigger than cpu_pack_cap trains in sub-packs, one after another: each model exactly as alone."""
    import bookmix.training.pack_size as pack_size_module
    import bookmix.training.packed as packed

    widest_one = 4 * FAST.micro_batch * SEQ * max(TOY.ff_dim, TOY.d_model)
    monkeypatch.setattr(pack_size_module, "PACK_CPU_ACTIVATION_BYTES", 2 * widest_one)  # cap: 2 models a sub-pack
    assert packed.cpu_pack_cap(TOY, FAST.micro_batch, SEQ) == 2
    sizes, logs = [], []
    real_init = packed.PackedLM.__init__

    def spy(self, cfg, k):  # noqa: ANN001
        sizes.append(k)
        real_init(self, cfg, k)

    monkeypatch.setattr(packed.PackedLM, "__init__", spy)
    results = train_pack(TOY, FAST, streams(), [tmp_path / f"pack{k}" for k in range(3)], heldouts=heldout(),
                         seeds=[0, 1, 2], on_log=logs.append)
    assert sizes == [2, 1]
    assert {rec["pack_index"] for rec in logs} == {0, 1, 2}  # the whole pack's indices, not the sub-pack's
    singles = _singles(tmp_path)
    for k, (r, s) in enumerate(zip(results, singles, strict=True)):
        assert r.status == s.status == "completed" and r.steps == s.steps
        _assert_same_run(tmp_path / f"pack{k}", tmp_path / f"single{k}")
