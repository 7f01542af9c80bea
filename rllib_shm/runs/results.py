"""RLlib's result names, in one place: what ``Algorithm.train()`` returns, read into the project's
metric names.

The project's metrics (logged to MLflow, reported to Tune, printed):

- ``episode_return_mean``: mean return of the last ``WINDOW_EPISODES`` (100) finished episodes,
  across iterations (the loop's :class:`EpisodeWindow`). RLlib 2.60's own
  ``env_runners/episode_return_mean`` is the mean over the episodes finished *in this iteration*
  only: its stats are cleared at every reduce, so its ``metrics_num_episodes_for_smoothing``
  window never spans iterations. With long episodes that is a handful of episodes (8 per
  iteration on CueRecall-D1000), and a best-so-far or a stop rule on it rewards luck;
- ``episode_return_max_mean``: the best of those means so far (POPGym's MMER), added by the loop;
- ``success_rate``: the share of the same window of finished episodes whose env reported
  ``info["success"]`` true on the last step (``rllib/success.py``); only for envs that report
  success, and only once one of their episodes has ended; read it as NaN where absent
  (``metrics.get("success_rate", math.nan)``);
- ``window_episodes``: how many episodes those two means cover (fewer than 100 early in a run);
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
EPISODES_THIS_ITERATION = ("env_runners", "num_episodes")
WINDOW_EPISODES = 100  # RLlib's default metrics_num_episodes_for_smoothing
RUNNER_RESTARTS = ("fault_tolerance", "num_remote_worker_restarts")
HEALTHY_RUNNERS = ("fault_tolerance", "num_healthy_workers")
LEARNER = ("learners", "default_policy")
SAMPLING_TIMER = ("timers", "env_runner_sampling_timer")
LEARNING_TIMER = ("timers", "learner_update_timer")
LEARNER_STATS = ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "vf_explained_var",  # PPO
                 "qf_loss", "alpha_value")  # SAC (policy_loss too)

#: every metric name the PPO loop produces, in report order
METRICS = ("episode_return_mean", "episode_return_max_mean", "success_rate", "window_episodes", "episode_len_mean",
           "env_steps",
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


def iteration_episodes(result: dict) -> int | None:
    """Episodes finished in this iteration (RLlib's ``env_runners/num_episodes``), or None where the
    result does not say."""
    count = result_value(result, EPISODES_THIS_ITERATION, None)
    return None if count is None else int(count)


Chunk = tuple[int, float, float]  # (episodes, their mean return, their success rate or NaN)


def window_chunks(chunks: tuple[Chunk, ...], size: int = WINDOW_EPISODES) -> tuple[Chunk, ...]:
    """The newest ``chunks`` that cover ``size`` episodes (older ones dropped)."""
    kept, covered = [], 0
    for chunk in reversed(chunks):
        if covered >= size:
            break
        kept.append(chunk)
        covered += chunk[0]
    return tuple(reversed(kept))


def window_best(best: float, best_full: bool, mean: float, covered: int) -> tuple[float, bool]:
    """MMER after one more windowed mean: (best, whether it comes from a full window of
    ``WINDOW_EPISODES``). A full window's mean never yields to a partial one's, and the first full
    window replaces the best partial one; a NaN mean changes nothing.

        >>> window_best(0.9, False, 0.2, 100), window_best(0.2, True, 0.9, 40), window_best(0.2, True, 0.5, 100)
        ((0.2, True), (0.2, True), (0.5, True))
    """
    full = covered >= WINDOW_EPISODES
    if math.isnan(mean) or (best_full and not full):
        return best, best_full
    if full and not best_full:
        return mean, True
    return max(best, mean), full


def window_means(chunks: tuple[Chunk, ...], size: int = WINDOW_EPISODES) -> tuple[float, float, int]:
    """(mean return, success rate, episodes) over the last ``size`` episodes of ``chunks``, oldest
    first: each chunk is one iteration's finished episodes with their means, and the oldest chunk
    counted contributes only the episodes the window still needs. The success rate is over the
    chunks whose env reported success (NaN where none did).

        >>> window_means(((60, 1.0, 1.0), (50, 0.0, 0.0)))  # 50 of the first chunk's 60, then 50
        (0.5, 0.5, 100)
        >>> window_means(((8, 1.0, float("nan")),))[2]
        8
    """
    returns = successes = 0.0
    counted = success_counted = 0
    for episodes, mean, success in reversed(chunks):
        take = min(episodes, size - counted)
        if take <= 0:
            break
        returns += take * mean
        counted += take
        if not math.isnan(success):
            successes += take * success
            success_counted += take
    if counted == 0:
        return math.nan, math.nan, 0
    return returns / counted, successes / success_counted if success_counted else math.nan, counted
