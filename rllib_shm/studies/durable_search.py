"""Tune's ``OptunaSearch`` for a durable Optuna study that may be ahead of Tune's experiment state.

A study's Optuna storage (SQLite or a server) is written the moment a trial is told, while Tune
writes its experiment state only now and then. A driver killed in between leaves a trial that
Optuna has as COMPLETE and Tune as RUNNING. ``rllib-shm tune --resume`` then resumes that trial
from its last checkpoint, and plain ``OptunaSearch.on_trial_result`` reports the resumed run's
results onto the finished Optuna trial: Optuna raises ``UpdateFinishedTrialError``, and Tune ends
the whole study with a ``TuneError``.

:class:`DurableOptunaSearch` keeps the value Optuna was told first (Optuna's trial is final once
finished) and lets the resumed Tune trial finish without reporting to Optuna again. The resumed
run's results still reach Tune, its trial directory and the MLflow child run.

A trial resumed from a checkpoint older than its last report repeats iterations whose step Optuna
already holds; Optuna ignores each repeat with a ``UserWarning``. Those are gathered into one log
line per trial: Optuna keeps the values it was told first.
"""

from __future__ import annotations

import logging
import warnings

from optuna.exceptions import UpdateFinishedTrialError
from ray.tune.search.optuna import OptunaSearch

logger = logging.getLogger(__name__)
REPEATED_STEP = r"The reported value is ignored because this `step=\d+` is already reported"  # Optuna's words


class DurableOptunaSearch(OptunaSearch):
    """``OptunaSearch`` that ignores results of trials whose Optuna trial already finished."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._finished_before_resume: set[str] = set()

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id in self._finished_before_resume:
            return
        try:
            with warnings.catch_warnings():  # only Optuna's repeated-step warning is turned into an exception:
                warnings.filterwarnings("error", message=REPEATED_STEP, category=UserWarning)  # it returns right
                super().on_trial_result(trial_id, result)  # after warning, so stopping there changes nothing
        except UpdateFinishedTrialError:
            self._finished_before_resume.add(trial_id)
            logger.warning("trial %s: Optuna already has this trial as finished (the driver was killed after "
                           "telling Optuna and before Tune saved the trial as finished); Optuna keeps its value, "
                           "and the resumed run's results go to Tune and MLflow only", trial_id)
        except UserWarning:  # (the filter above makes only the repeated-step warning an exception)
            # (setdefault: a study begun before this set existed restores a searcher without it)
            repeated = self.__dict__.setdefault("_repeated_steps", set())
            if trial_id not in repeated:
                repeated.add(trial_id)
                logger.warning("trial %s: resumed from a checkpoint older than its last report, it repeats steps "
                               "Optuna already holds (from step %s on); Optuna keeps the values it was told first",
                               trial_id, result.get("training_iteration", "?"))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._finished_before_resume:
            self._completed_trials.add(trial_id)
            return
        super().on_trial_complete(trial_id, result=result, error=error)
