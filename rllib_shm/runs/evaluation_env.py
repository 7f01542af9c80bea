"""The env an evaluation runs on: the training env's config with ``--env-config`` overrides merged
over it, built and checked before any episode runs.

Used by ``evaluate`` for checkpoints (``runs/evaluate.py``) and for ONNX policies
(``export/evaluate.py``). Held-out meta-RL evaluation, for instance, is the training run's env
with one kwarg changed, and ``--each-task`` runs one episode per task of its pool (the 150
held-out tasks of the 50/150 split, each exactly once): ``rllib-shm evaluate CKPT --env-config
subset=eval --each-task``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def evaluation_env_config(env_id: str, trained_id: str | None, trained_config: Mapping[str, Any] | None,
                          overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The kwargs the evaluation env is built with: the training env config (when ``env_id`` is the
    training env; another env starts from its defaults) updated with ``overrides``."""
    base = dict(trained_config or {}) if env_id == trained_id else {}
    return {**base, **overrides}


def make_evaluation_env(env_id: str, env_config: Mapping[str, Any], overrides: Mapping[str, Any]):
    """Build ``env_id`` with ``env_config``; ValueError naming the offending kwarg (one the env does
    not take, with the ones it does) or the env's own complaint about a value
    (e.g. ``subset must be one of ('train', 'eval'), got 'foo'``)."""
    from rllib_shm.rllib import env_kwargs, make_env, resolve_env

    resolve_env(env_id)  # an unknown env id fails here with its own message
    accepted = env_kwargs(env_id)
    unknown = [key for key in overrides if accepted is not None and key not in accepted]
    if unknown:
        raise ValueError(f"--env-config: {env_id} takes no keyword argument {', '.join(map(repr, unknown))}; "
                         f"it takes {', '.join(accepted)}")
    try:
        return make_env(env_id, env_config)
    except (TypeError, ValueError) as error:
        given = " ".join(f"{key}={value}" for key, value in overrides.items())
        what = f"--env-config {given}" if overrides else "the checkpoint's env config"
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{what}: {env_id} refused the env config {dict(env_config)}: {message}") from None
    except Exception as error:  # noqa: BLE001 - the env's own failure (a missing extra, its constructor): named
        from rllib_shm.runs.env_probe import build_failure

        raise build_failure(env_id, env_config, error) from None


def check_episodes(episodes: int | None, each_task: bool, seed: int = 0) -> None:
    """``--episodes`` / ``--each-task`` / ``--seed`` checked before anything is loaded: a count ≥ 1,
    or None (default 20); ``each_task`` replaces the count, so the two exclude each other; the
    seed is ≥ 0 (gymnasium refuses negative seeds)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed {seed}: expected an integer ≥ 0 (episode i is reset with seed + i)")
    if each_task and episodes is not None:
        raise ValueError(f"--episodes {episodes} and --each-task exclude each other: --each-task runs one "
                         "episode per task of the env's task pool")
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1):
        raise ValueError(f"--episodes must be ≥ 1, got {episodes}")


def episode_tasks(env, env_id: str, episodes: int | None, each_task: bool) -> tuple[int, list[int] | None]:
    """(episodes to run, the task of each episode or None for the env's own draw), for arguments
    that passed ``check_episodes``.

    ``each_task``: one episode per task of the env's task pool (``env.unwrapped.task_pool``, the
    meta-RL envs' train or eval tasks), in pool order, chosen through ``reset(options={"task": i})``.
    Otherwise ``episodes`` (default 20) episodes draw their tasks.
    """
    if not each_task:
        return (20 if episodes is None else episodes), None
    pool = getattr(getattr(env, "unwrapped", env), "task_pool", None)
    if not pool:
        raise ValueError(f"--each-task: {env_id} has no task pool (only the meta-RL envs, Wind and PointRobot, "
                         "choose a task per episode)")
    return len(pool), [int(task) for task in pool]


def reset_options(tasks: Sequence[int] | None, episodes: int) -> list[dict[str, int] | None]:
    """``reset(options=...)`` of each of ``episodes`` episodes: ``{"task": tasks[i]}``, or None (the
    env draws) without ``tasks``; shared by the torch and the onnxruntime episode loops."""
    if tasks is None:
        return [None] * episodes
    if len(tasks) != episodes:
        raise ValueError(f"tasks: expected one per episode ({episodes}), got {len(tasks)}")
    return [{"task": int(task)} for task in tasks]


def outcome_of(info: dict) -> str | None:
    """What the agent did in an episode, as the env names it at its last step (``info["outcome"]``:
    Visual Match's ``"cue_colour"``, Key-to-Door's ``"no_key"``, ...), or None where it names nothing."""
    outcome = info.get("outcome")
    return outcome if isinstance(outcome, str) else None


def task_of(info: dict) -> int | None:
    """The hidden task an episode runs (``info["task"]`` at reset, meta-RL envs), or None."""
    task = info.get("task")
    return int(task) if isinstance(task, int | np.integer) and not isinstance(task, bool) else None
