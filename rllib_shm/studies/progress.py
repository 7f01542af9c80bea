"""Compact console progress for a study (Tune's own output is silenced: ``RunConfig(verbose=0)``).

On the console: one line when a trial starts (with its MLflow run name, ``tracking/run_names.py``, given
the study's ``base`` config), one when it ends (its score, its last success rate
where the env reports one, iterations, env steps, time), and a status line at most every
``interval_s`` seconds while results arrive (trials done / running, the best score so far). The
full detail, one line per reported iteration of every trial, goes to ``<experiment dir>/study.log``
for a local study (Tune's ``result.json`` / ``progress.csv`` per trial hold everything in any
case). The leaderboard is printed by the runner at the end.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from ray.tune import Callback

from rllib_shm.studies.search_space import decode, trial_config
from rllib_shm.tracking.run_names import run_name


class StudyProgress(Callback):
    def __init__(self, name: str, num_samples: int, space: dict, metric: str, mode: str,
                 log_file: str | None = None, interval_s: float = 30.0, base: dict | None = None) -> None:
        self.name = name
        self.num_samples = num_samples
        self.space = space
        self.base = base
        self.metric = metric
        self.mode = mode
        self.log_file = log_file
        self.interval_s = interval_s
        self.best: dict[str, float] = {}  # trial id -> best score so far
        self.finished: set[str] = set()
        self.started = time.monotonic()
        self.last_status = 0.0

    # -- helpers ------------------------------------------------------------------------------
    def _label(self, trial) -> str:
        values = decode(self.space, {k: v for k, v in trial.config.items() if k in self.space})
        if getattr(self, "base", None) is not None:  # (absent in callbacks pickled by older versions)
            return run_name(trial_config(self.base, values), values)
        return ", ".join(f"{path.split('.')[-1]}={value:.4g}" if isinstance(value, float)
                         else f"{path.split('.')[-1]}={value}" for path, value in values.items())

    def _say(self, text: str) -> None:
        elapsed = timedelta(seconds=round(time.monotonic() - self.started))
        print(f"[{self.name} {elapsed}] {text}", flush=True)

    def _leader(self) -> str:
        scores = {k: v for k, v in self.best.items() if not math.isnan(v)}
        if not scores:
            return "no score yet"
        pick = max if self.mode == "max" else min
        trial = pick(scores, key=scores.get)
        return f"best {self.metric} {scores[trial]:.4g} (trial_{trial})"

    def _absorb(self, trials) -> None:
        """Count the trials a resumed study restored as ended, with their last scores.

        ``Tuner.restore`` brings this callback back as it was pickled when the study began (nothing
        finished, no scores), so the status line would read "0/N trials done" after a resume; the
        restored trials themselves know their state and last result."""
        for trial in trials:
            if trial.status in ("TERMINATED", "ERROR") and trial.trial_id not in self.finished:
                self.finished.add(trial.trial_id)
                score = (trial.last_result or {}).get(self.metric)
                if trial.trial_id not in self.best and isinstance(score, int | float) and not math.isnan(score):
                    self.best[trial.trial_id] = float(score)

    # -- Tune callback hooks ------------------------------------------------------------------
    def setup(self, **info):  # also after Tuner.restore, which brings this callback back pickled
        self.started = time.monotonic()
        self.last_status = 0.0

    def on_trial_start(self, iteration, trials, trial, **info):
        self._say(f"trial_{trial.trial_id} started: {self._label(trial)}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        score = result.get(self.metric)
        if isinstance(score, int | float) and not math.isnan(score):
            self.best[trial.trial_id] = float(score)
        if self.log_file:  # (the study's directory exists: the runner made it)
            with open(self.log_file, "a", encoding="utf-8") as handle:
                metrics = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in result.items() if isinstance(v, int | float | str))
                handle.write(f"{datetime.now().isoformat(timespec='seconds')} trial_{trial.trial_id} {metrics}\n")
        now = time.monotonic()
        if now - self.last_status >= self.interval_s:
            self.last_status = now
            self._absorb(trials)
            running = sum(1 for t in trials if t.status == "RUNNING")
            self._say(f"{len(self.finished)}/{self.num_samples} trials done, {running} running | {self._leader()}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.finished.add(trial.trial_id)
        self._absorb(trials)
        result = trial.last_result or {}
        score = self.best.get(trial.trial_id, math.nan)
        success = result.get("success_rate")
        success = f", success {success:.1%}" if isinstance(success, float) and not math.isnan(success) else ""
        self._say(f"trial_{trial.trial_id} finished: {self.metric} {score:.4g}{success} after "
                  f"{result.get('iteration', '?')} iterations, {int(result.get('env_steps', 0)):,} env steps "
                  f"({len(self.finished)}/{self.num_samples} done) | {self._leader()}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.finished.add(trial.trial_id)
        self._say(f"trial_{trial.trial_id} failed (Tune retries it up to tune.max_failures times); "
                  f"its error is in {trial.path}/error.txt")
