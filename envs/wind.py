"""Wind: reach a fixed goal under a hidden, task-specific drift (meta-RL, SHM paper)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.navigation import NUM_TASKS, TASK_SEED, TaskNavigationEnv


class Wind(TaskNavigationEnv):
    """Wind, from pomdp-baselines (``envs/meta/toy_navigation/wind.py``) with SHM's settings.

    ## Description
    A point starts at (0, 0) and must reach the goal (0, 1). Each task adds a hidden wind
    w ~ U(-0.1, 0.1)^2 to every move: s' = s + a + w. The 200 winds are drawn once from
    ``task_seed``; the task is ``reset(options={"task": i})`` or drawn from the task pool
    (``split`` = "50_150" / "10_190" with ``subset`` = "train" / "eval", all tasks when
    ``split`` is None; see :func:`envs.navigation.task_split`). The agent must infer the wind
    from its own moves and compensate.

    ## Observation space
    ``Box((4,), float32)``: position (x, y) (bounded by horizon * 0.2), then the previous action
    in [-1, 1] (zeros after reset) as SHM fed it (``prev_action=False`` leaves only (x, y)).

    ## Action space
    ``Box(-1, 1, (2,), float32)``: clipped to [-1, 1] and scaled by ``max_step`` = 0.1 inside.

    ## Rewards
    1 when ||s' - goal|| <= ``goal_radius`` (0.01), else 0; the episode goes on at the goal.

    ## Termination
    Never terminated; truncated after ``horizon`` = 100 steps. The last step's
    ``info["success"]``: the goal was reached at least once. ``info["task"]``: the task index.

    ## Registered ids
    ``rllib_shm/Wind-v0`` (all 200 tasks; pass ``split``/``subset`` in the env config).
    """

    GOAL = np.array([0.0, 1.0])
    MAX_WIND = 0.1  # winds ~ U(-MAX_WIND, MAX_WIND)^2

    def __init__(
        self,
        horizon: int = 100,
        goal_radius: float = 0.01,
        prev_action: bool = True,
        num_tasks: int = NUM_TASKS,
        task_seed: int = TASK_SEED,
        split: str | None = None,
        subset: str = "train",
        max_step: float = 0.1,
    ):
        if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        if not goal_radius > 0:
            raise ValueError(f"goal_radius must be > 0, got {goal_radius!r}")
        super().__init__(num_tasks, task_seed, split, subset, max_step)
        self.horizon = int(horizon)
        self.episode_length = self.horizon
        self.goal_radius = float(goal_radius)
        self.prev_action = bool(prev_action)
        reach = self.horizon * (self.max_step + self.MAX_WIND)  # farthest drift from (0, 0)
        high = np.array([reach, reach] + ([1.0, 1.0] if self.prev_action else []), dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    def _make_tasks(self, rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        return rng.uniform(-self.MAX_WIND, self.MAX_WIND, size=(num_tasks, 2))  # winds

    @property
    def wind(self) -> np.ndarray:
        """The current task's wind (hidden from the agent; for oracles and plots)."""
        return self.tasks[self.task].copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.task = self._select_task(options)
        self._position = np.zeros(2)
        self._t = 0
        self._reached = False
        return self._observation(np.zeros(2)), {"task": self.task}

    def step(self, action):
        if self._t >= self.horizon:
            raise RuntimeError("step() called after the episode ended; call reset()")
        clipped, move = self._rescale(action)
        self._position = self._position + move + self.tasks[self.task]
        at_goal = bool(np.linalg.norm(self._position - self.GOAL) <= self.goal_radius)
        self._reached |= at_goal
        self._t += 1
        truncated = self._t >= self.horizon
        info: dict[str, Any] = {"task": self.task}
        if truncated:
            info["success"] = self._reached
        return self._observation(clipped), float(at_goal), False, truncated, info

    def _observation(self, previous_action: np.ndarray) -> np.ndarray:
        parts = [self._position, previous_action] if self.prev_action else [self._position]
        return np.concatenate(parts).astype(np.float32)
