"""Learning-rate schedules and the training settings' validation."""

from __future__ import annotations

import math

import pytest

from bookmix.errors import ConfigError
from bookmix.training.config import TrainConfig
from bookmix.training.schedule import lr_at


def _lrs(total: int, **kw) -> list[float]:
    cfg = TrainConfig(lr=1.0, min_lr_ratio=0.1, **kw)
    return [lr_at(s, total, cfg) for s in range(total)]


def test_warmup_is_linear_to_the_peak():
    lrs = _lrs(100, warmup=10, schedule="constant")
    assert lrs[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert all(lr == 1.0 for lr in lrs[10:])


def test_warmup_as_a_fraction_of_the_steps():
    assert TrainConfig(warmup=0.1).warmup_steps(200) == 20
    assert TrainConfig(warmup=7).warmup_steps(200) == 7


def test_cosine_falls_monotonically_to_the_floor():
    lrs = _lrs(100, warmup=10, schedule="cosine")
    after = lrs[10:]
    assert after[0] == pytest.approx(1.0)
    assert after[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(after, after[1:], strict=False))
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 45 / 89)))


def test_wsd_is_flat_then_decays_linearly_over_the_last_fraction():
    lrs = _lrs(100, warmup=5, schedule="wsd", decay_fraction=0.2)
    assert all(lr == 1.0 for lr in lrs[5:80])
    decay = lrs[80:]
    assert decay[-1] == pytest.approx(0.1)
    steps = [a - b for a, b in zip(decay, decay[1:], strict=False)]
    assert steps == pytest.approx([steps[0]] * len(steps))  # linear
    assert lrs[80] < 1.0


def test_single_step_run_has_a_finite_rate():
    for schedule in ("cosine", "wsd", "constant"):
        lr = lr_at(0, 1, TrainConfig(lr=1.0, schedule=schedule))
        assert 0 < lr <= 1.0


@pytest.mark.parametrize(
    "data, field",
    [({"micro_batch": 0}, "micro_batch"), ({"schedule": "linear"}, "schedule"), ({"betas": [0.9, 1.0]}, "betas"),
     ({"warmup": 2.5}, "warmup"), ({"lr": -1}, "lr"), ({"bogus": 1}, "bogus")],
)
def test_invalid_settings_name_the_field(data, field):
    with pytest.raises(ConfigError, match=rf"^train\.{field}"):
        TrainConfig.from_dict(data)


def test_math_fields_ignore_operational_settings_but_keep_the_effective_batch():
    a = TrainConfig(micro_batch=8, grad_accum=2, device="cpu", eval_every=5)
    b = TrainConfig(micro_batch=4, grad_accum=4, device="cuda", eval_every=0, compile=True)
    assert a.math_fields() == b.math_fields()
    assert a.math_fields() != TrainConfig(micro_batch=8, grad_accum=1).math_fields()
    assert a.math_fields() != TrainConfig(micro_batch=8, grad_accum=2, lr=2e-3).math_fields()
