"""RLlib's result names, in one place: what ``Algorithm.train()`` returns, read into the project's
metric names.

The project's metrics (logged to MLflow, reported to Tune, printed):

- ``episode_return_mean``: mean return of the episodes finished in this iteration (RLlib's
  ``env_runners/episode_return_mean``, a running window);
- ``episode_return_max_mean``: the best of those means so far (POPGym's MMER), added by the loop;
- ``success_rate``: the share of RLlib's window of finished episodes (the one of
  ``episode_return_mean``) whose env reported ``info["success"]`` true on the last step
  (``rllib/success.py``); only for envs that report success, and only once one of their episodes
  has ended; read it as NaN where absent (``metrics.get("success_rate", math.nan)``);
- ``episode_len_mean``, ``env_steps`` (lifetime env steps sampled), ``env_steps_per_s`` (loop),
  ``episodes`` (lifetime episodes finished);
- ``env_runner_restarts`` (lifetime restarts of crashed remote env runners) and
  ``healthy_env_runners`` (remote env runners alive after the iteration), where there are any;
- ``learner/<name>`` for the learner statistics in ``LEARNER_STATS``.

    >>> result = {"env_runners": {"episode_return_mean": 0.5, "num_env_steps_sampled_lifetime": 4000},
    ...           "learners": {"default_policy": {"vf_loss": 0.25}}}
    >>> metrics = iteration_metrics(result)
    >>> metrics["episode_return_mean"], metrics["env_steps"], metrics["learner/vf_loss"]
    (0.5, 4000, 0.25)
    >>> "success_rate" in metrics  # the env reports no info["success"]
    False
    >>> iteration_metrics({"env_runners": {"episode_success_mean": 0.75}})["success_rate"]
    0.75
"""

from __future__ import annotations

import math
from typing import Any

from rllib_shm.config.paths import get_path
from rllib_shm.rllib.success import SUCCESS_MEAN

EPISODE_RETURN_MEAN = ("env_runners", "episode_return_mean")
EPISODE_SUCCESS_MEAN = ("env_runners", SUCCESS_MEAN)
EPISODE_LEN_MEAN = ("env_runners", "episode_len_mean")
ENV_STEPS_LIFETIME = ("env_runners", "num_env_steps_sampled_lifetime")
ENV_STEPS_THIS_ITERATION = ("env_runners", "num_env_steps_sampled")
EPISODES_LIFETIME = ("env_runners", "num_episodes_lifetime")
RUNNER_RESTARTS = ("fault_tolerance", "num_remote_worker_restarts")
HEALTHY_RUNNERS = ("fault_tolerance", "num_healthy_workers")
LEARNER = ("learners", "default_policy")
SAMPLING_TIMER = ("timers", "env_runner_sampling_timer")
LEARNING_TIMER = ("timers", "learner_update_timer")
LEARNER_STATS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "vf_explained_var",  # PPO
                 "qf_loss", "alpha_value")  # SAC (policy_loss too)

#: every metric name the PPO loop produces, in report order
METRICS = ("episode_return_mean", "episode_return_max_mean", "success_rate", "episode_len_mean", "env_steps",
           "env_steps_per_s", "episodes", "env_runner_restarts", "healthy_env_runners",
           *(f"learner/{name}" for name in LEARNER_STATS))


def result_value(result: dict, path: tuple[str, ...], default: Any = math.nan) -> Any:
    """``result[path[0]][path[1]]...`` of an RLlib result dict, or ``default`` where missing."""
    return get_path(result, path, default)


def iteration_metrics(result: dict) -> dict[str, float]:
    """The project's metrics read from one ``Algorithm.train()`` result (NaN where RLlib has none
    yet, e.g. no episode finished; ``success_rate`` and learner statistics only where present)."""
    metrics: dict[str, float] = {
        "episode_return_mean": float(result_value(result, EPISODE_RETURN_MEAN)),
        "episode_len_mean": float(result_value(result, EPISODE_LEN_MEAN)),
        "env_steps": int(result_value(result, ENV_STEPS_LIFETIME, 0)),
        "episodes": int(result_value(result, EPISODES_LIFETIME, 0)),
    }
    success = result_value(result, EPISODE_SUCCESS_MEAN, None)
    if success is not None:
        metrics["success_rate"] = float(success)
    if result_value(result, HEALTHY_RUNNERS, None) is not None:
        metrics["env_runner_restarts"] = int(result_value(result, RUNNER_RESTARTS, 0))
        metrics["healthy_env_runners"] = int(result_value(result, HEALTHY_RUNNERS))
    learner = result_value(result, LEARNER, {})
    for name in LEARNER_STATS:
        if isinstance(learner, dict) and name in learner:
            try:
                metrics[f"learner/{name}"] = float(learner[name])
            except (TypeError, ValueError):
                continue
    return metrics
