"""Shared pieces of the meta-RL point-navigation tasks (Wind, Point Robot).

Both follow SHM's modified pomdp-baselines settings: ``num_tasks`` = 200 hidden tasks generated
once from a fixed ``task_seed`` (independent of the episode seed), a train/eval split held
outside the env (:func:`task_split`), a task chosen through ``reset(options={"task": i})`` or
drawn from the env's task pool, and actions in [-1, 1] rescaled inside the env to
[-``max_step``, ``max_step``] per coordinate (pomdp-baselines' VariBadWrapper did this).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

NUM_TASKS = 200  # tasks per env, as in SHM's configs
TASK_SEED = 1337  # the fixed seed of the reference code's task generation
SPLITS = ("50_150", "10_190")  # the paper's train/eval splits
SUBSETS = ("train", "eval")


def task_split(split: str, num_tasks: int = NUM_TASKS) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Train and eval task indices of a split "<train>_<eval>", e.g. "50_150": (0..49, 50..199).

    As in pomdp-baselines, the first ``train`` tasks train and the next ``eval`` tasks evaluate;
    the two counts must add up to ``num_tasks``.
    """
    try:
        num_train, num_eval = (int(part) for part in str(split).split("_"))
    except ValueError:
        raise ValueError(f"split must look like '50_150' (train_eval), got {split!r}") from None
    if num_train < 1 or num_eval < 1 or num_train + num_eval != num_tasks:
        raise ValueError(
            f"split {split!r} does not add up: {num_train} train + {num_eval} eval tasks must be "
            f"positive and sum to num_tasks = {num_tasks} (the paper's splits: {', '.join(SPLITS)})"
        )
    return tuple(range(num_train)), tuple(range(num_train, num_tasks))


class TaskNavigationEnv(gym.Env):
    """Base: task table, task pool, task selection on reset, action rescaling."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        num_tasks: int,
        task_seed: int,
        split: str | None,
        subset: str,
        max_step: float,
    ):
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int | np.integer) or num_tasks < 1:
            raise ValueError(f"num_tasks must be an integer >= 1, got {num_tasks!r}")
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        if not max_step > 0:
            raise ValueError(f"max_step must be > 0, got {max_step!r}")
        self.num_tasks = int(num_tasks)
        self.max_step = float(max_step)
        if split is None:
            self.task_pool = tuple(range(self.num_tasks))
        else:
            train, evaluation = task_split(split, self.num_tasks)
            self.task_pool = train if subset == "train" else evaluation
        self.tasks = self._make_tasks(np.random.default_rng(task_seed), self.num_tasks)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def _make_tasks(self, rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        """The [num_tasks, 2] task parameters, drawn from the fixed task generator."""
        raise NotImplementedError

    def _select_task(self, options: dict[str, Any] | None) -> int:
        """``options["task"]`` if given, else a task drawn uniformly from the task pool."""
        if options and options.get("task") is not None:
            task = options["task"]
            if isinstance(task, bool) or not isinstance(task, int | np.integer):
                raise ValueError(f"options['task'] must be an integer, got {task!r}")
            if not 0 <= task < self.num_tasks:
                raise ValueError(f"options['task'] must be in [0, {self.num_tasks}), got {task}")
            return int(task)
        return self.task_pool[int(self.np_random.integers(len(self.task_pool)))]

    def _rescale(self, action) -> tuple[np.ndarray, np.ndarray]:
        """(policy action clipped to [-1, 1], displacement in [-max_step, max_step]^2)."""
        action = np.asarray(action, dtype=np.float64).reshape(2)
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        clipped = np.clip(action, -1.0, 1.0)
        return clipped, clipped * self.max_step


def fixed_policy_level(
    env: TaskNavigationEnv,
    make_policy: Callable[[], Callable[[TaskNavigationEnv, np.ndarray, np.random.Generator], Any]],
    episodes_per_task: int,
    seed: int = 0,
) -> tuple[float, float]:
    """Mean return and success share of a fixed policy, ``episodes_per_task`` episodes on each task
    of ``env.task_pool`` (the reference levels of a results directory: no learning involved).
    ``make_policy()`` gives a fresh policy per episode, called as ``policy(env, obs, rng)``; episode
    seeds are drawn from ``np.random.default_rng(seed)``, which the policies share as ``rng``.

        >>> from envs.wind import Wind
        >>> fixed_policy_level(Wind(split="50_150", subset="train"), lambda: lambda env, obs, rng: np.zeros(2), 1)
        (0.0, 0.0)
    """
    rng = np.random.default_rng(seed)
    returns, successes = [], []
    for task in env.task_pool:
        for _ in range(episodes_per_task):
            policy = make_policy()
            obs, _ = env.reset(seed=int(rng.integers(2**30)), options={"task": task})
            total, done, info = 0.0, False, {}
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy(env, obs, rng))
                total += reward
                done = terminated or truncated
            returns.append(total)
            successes.append(info["success"])
    return float(np.mean(returns)), float(np.mean(successes))
