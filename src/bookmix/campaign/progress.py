"""The campaign's progress bar (rich, on stderr) with two ETAs: the one measured from this session's trials (the
forecast's per-trial time until the first trial ends), and the campaign forecast's (its total, made before training,
minus the time elapsed) — and, when the campaign ends, one line comparing the forecast with the time it took."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from bookmix.campaign.spec import TrialResult, TrialSpec
from bookmix.campaign.store import Store


def forecast_trial_seconds(model: dict, tokens: int) -> float | None:
    """The forecaster's wall time for one trial of ``tokens`` tokens on this machine's device (None if unavailable)."""
    try:
        from bookmix.forecast import detect_device, estimate, load_calibration
        from bookmix.models.config import ModelConfig

        cfg = ModelConfig.from_dict(model)
        device = detect_device()
        calib = load_calibration(device, cfg.name) or load_calibration(device)
        fc = estimate(cfg, tokens=[max(1, int(tokens))], device=device, calibration=calib)
        return float(fc.rows[0].seconds)
    except Exception:  # the ETA is a convenience: without a forecast the bar falls back to measured times
        return None


class _EtaColumn(ProgressColumn):
    def __init__(self, owner: CampaignProgress) -> None:
        super().__init__()
        self.owner = owner

    def render(self, task) -> Text:
        eta = self.owner.eta_seconds()
        text = f"eta {_clock(eta)}" if eta is not None else "eta -:--:--"
        planned = self.owner.forecast_eta_seconds()
        if planned is not None:
            text += f" (forecast {_clock(planned)})"
        return Text(text, style="progress.remaining")


def _clock(seconds: float) -> str:
    h, rem = divmod(int(seconds), 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}"


class CampaignProgress:
    """Counts finished trials over all planned ones; ETA = remaining trials × seconds per trial ÷ workers."""

    def __init__(self, cfg, model: dict, lib, enabled: bool = True, forecast_total: float | None = None) -> None:
        from bookmix.utils.console import console

        self.cfg = cfg
        self.model = model
        self.lib = lib
        self.enabled = enabled
        self.workers = cfg.executor.workers or 1
        self.total = 0
        self.finished = 0
        self.measured: list[float] = []
        self.forecast: float | None = None
        self.forecast_total = forecast_total
        """The campaign forecast's total seconds, made before training (``campaign.forecast``)."""
        self.started = time.time()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            _EtaColumn(self),
            console=console,
            disable=not enabled,
        )
        self.task = self.progress.add_task(f"campaign {cfg.campaign.name}", total=0)

    def __enter__(self) -> CampaignProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def add(self, specs: list[TrialSpec], store: Store) -> None:
        """Count newly planned trials (those already finished count as done)."""
        ids = [s.trial_id for s in specs]
        rows = {t["id"]: t for t in store.trials(ids)} if ids else {}
        new_total = len(rows)
        new_done = sum(1 for t in rows.values() if t["state"] in ("completed", "failed", "diverged"))
        self.total += new_total
        self.finished += new_done
        if self.forecast is None and specs and self.enabled:
            self.forecast = self._forecast(specs[0])
        self.progress.update(self.task, total=self.total, completed=self.finished)

    def _forecast(self, spec: TrialSpec) -> float | None:
        try:
            from bookmix.recipes import Recipe

            stream = Recipe.from_dict(spec.recipe).stream(self.lib, int(self.model["block_size"]))
            tokens = stream.n_windows * stream.seq_len
        except Exception:
            return None
        return forecast_trial_seconds(self.model, tokens)

    def done(self, spec: TrialSpec, res: TrialResult) -> None:
        self.finished += 1
        if res.train_seconds:
            self.measured.append(res.train_seconds + res.eval_seconds)
        self.progress.update(self.task, completed=self.finished)

    def eta_seconds(self) -> float | None:
        per_trial = sum(self.measured) / len(self.measured) if self.measured else self.forecast
        if per_trial is None:
            return None
        return max(0, self.total - self.finished) * per_trial / self.workers

    def forecast_eta_seconds(self) -> float | None:
        """What the campaign forecast says is left: its total minus the time elapsed (0 once overrun)."""
        if self.forecast_total is None:
            return None
        return max(0.0, self.forecast_total - (time.time() - self.started))

    def finish(self) -> str | None:
        """The closing line, forecast against the time it took (printed when the bar is shown); None without one."""
        if self.forecast_total is None:
            return None
        from bookmix.forecast.units import human_seconds

        took = time.time() - self.started
        line = (f"forecast {human_seconds(self.forecast_total)}, took {human_seconds(took)} "
                f"(forecast ÷ actual {self.forecast_total / max(took, 1e-9):.2f})")
        if self.enabled:
            self.progress.console.print(f"campaign {self.cfg.campaign.name}: {line}")
        return line
