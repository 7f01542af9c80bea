"""The study's console progress counts trials a resumed study restored as ended."""

from __future__ import annotations

import math
from types import SimpleNamespace

from rllib_shm.studies.progress import StudyProgress


def _trial(trial_id: str, status: str, score: float | None = None, iteration: int = 3):
    result = {} if score is None else {"episode_return_mean": score, "iteration": iteration, "env_steps": 4096}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result, config={}, path="/tmp/x")


def test_resumed_study_counts_restored_trials_and_their_scores(capsys):
    progress = StudyProgress("s", 5, {}, "episode_return_mean", "max", interval_s=0.0)
    progress.setup()  # as after Tuner.restore: nothing known of the earlier driver
    trials = [_trial("a", "TERMINATED", 0.9), _trial("b", "ERROR"), _trial("c", "RUNNING"),
              _trial("d", "PENDING")]
    progress.on_trial_result(0, trials, trials[2], {"episode_return_mean": 0.1})
    line = capsys.readouterr().out
    assert "2/5 trials done, 1 running" in line
    assert "best episode_return_mean 0.9 (trial_a)" in line

    progress.on_trial_result(0, trials, trials[2], {"episode_return_mean": 0.95})
    capsys.readouterr()
    trials[2] = _trial("c", "TERMINATED", 0.95)
    progress.on_trial_complete(0, trials, trials[2])
    line = capsys.readouterr().out
    assert "trial_c finished: episode_return_mean 0.95" in line
    assert "(3/5 done) | best episode_return_mean 0.95 (trial_c)" in line


def test_fresh_study_counts_only_what_it_saw(capsys):
    progress = StudyProgress("s", 2, {}, "episode_return_mean", "max", interval_s=0.0)
    trials = [_trial("a", "RUNNING"), _trial("b", "PENDING")]
    progress.on_trial_result(0, trials, trials[0], {"episode_return_mean": math.nan})
    line = capsys.readouterr().out
    assert "0/2 trials done, 1 running | no score yet" in line
