"""Point Robot (sparse): find a hidden goal on a half-circle, twice per task (meta-RL, SHM paper)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.navigation import NUM_TASKS, TASK_SEED, TaskNavigationEnv


class PointRobot(TaskNavigationEnv):
    """Sparse Point Robot, pomdp-baselines' ``PointRobotSparse-v0`` with SHM's settings.

    ## Description
    Each task hides a goal on the upper unit half-circle (angle ~ U(0, pi); 200 goals drawn once
    from ``task_seed``). An inner episode starts at s ~ U([-1.5, 1.5] x [-0.5, 1.5]) and moves
    s' = s + a for ``horizon`` = 100 steps. ``episodes_per_task`` = 2 inner episodes of the same
    task are chained into one meta-episode (pomdp-baselines' VariBadWrapper, k = 2), so a memory
    agent can explore in the first and exploit in the second. The task is
    ``reset(options={"task": i})`` or drawn from the task pool (``split`` = "50_150" / "10_190",
    ``subset`` = "train" / "eval"; all tasks when ``split`` is None).

    ## Observation space
    ``Box((4,), float32)``: position (x, y) (bounded by what the start box and ``horizon`` moves
    reach); the done flag (1.0 on the observation returned by the last step of an inner episode,
    else 0.0); the previous reward (0 after reset), as SHM fed it (``prev_reward=False`` drops
    it). After an inner episode other than the last, that observation is already the next inner
    episode's start state (flag 1.0): pomdp-baselines returned the old terminal state there
    while its env had moved on.

    ## Action space
    ``Box(-1, 1, (2,), float32)``: clipped to [-1, 1] and scaled by ``max_step`` = 0.1 inside.

    ## Rewards
    1 when ||s' - goal|| <= ``goal_radius`` (0.05), else 0; an inner episode goes on at the goal.

    ## Termination
    Never terminated; truncated after ``episodes_per_task * horizon`` = 200 steps. The last
    step's ``info["success"]``: the goal was reached in the last inner episode.
    ``info["task"]``: the task index; ``info["inner_episode"]``: index of the current one.

    ## Registered ids
    ``rllib_shm/PointRobot-v0`` (all 200 tasks; pass ``split``/``subset`` in the env config).
    """

    def __init__(
        self,
        horizon: int = 100,
        episodes_per_task: int = 2,
        goal_radius: float = 0.05,
        prev_reward: bool = True,
        num_tasks: int = NUM_TASKS,
        task_seed: int = TASK_SEED,
        split: str | None = None,
        subset: str = "train",
        max_step: float = 0.1,
    ):
        for name, value in (("horizon", horizon), ("episodes_per_task", episodes_per_task)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not goal_radius > 0:
            raise ValueError(f"goal_radius must be > 0, got {goal_radius!r}")
        super().__init__(num_tasks, task_seed, split, subset, max_step)
        self.horizon = int(horizon)
        self.episodes_per_task = int(episodes_per_task)
        self.episode_length = self.horizon * self.episodes_per_task
        self.goal_radius = float(goal_radius)
        self.prev_reward = bool(prev_reward)
        reach = self.horizon * self.max_step  # farthest a position gets from the start box
        low = np.array([-1.5 - reach, -0.5 - reach, 0.0] + ([0.0] if self.prev_reward else []), np.float32)
        high = np.array([1.5 + reach, 1.5 + reach, 1.0] + ([1.0] if self.prev_reward else []), np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

    def _make_tasks(self, rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        angles = rng.uniform(0.0, np.pi, size=num_tasks)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)  # goals

    @property
    def goal(self) -> np.ndarray:
        """The current task's goal (hidden from the agent; for oracles and plots)."""
        return self.tasks[self.task].copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.task = self._select_task(options)
        self._t = 0
        self._inner = 0
        self._reached = False  # goal reached in the current inner episode
        self._start_inner_episode()
        return self._observation(done=False, reward=0.0), self._info()

    def step(self, action):
        if self._t >= self.episode_length:
            raise RuntimeError("step() called after the episode ended; call reset()")
        _, move = self._rescale(action)
        self._position = self._position + move
        at_goal = bool(np.linalg.norm(self._position - self.tasks[self.task]) <= self.goal_radius)
        self._reached |= at_goal
        reward = float(at_goal)
        self._t += 1
        inner_done = self._t % self.horizon == 0
        truncated = self._t >= self.episode_length
        info = self._info()
        if truncated:
            info["success"] = self._reached
        elif inner_done:
            self._inner += 1
            self._reached = False
            self._start_inner_episode()
            info = self._info()
        return self._observation(done=inner_done, reward=reward), reward, False, truncated, info

    def _start_inner_episode(self) -> None:
        self._position = np.array([self.np_random.uniform(-1.5, 1.5), self.np_random.uniform(-0.5, 1.5)])

    def _info(self) -> dict[str, Any]:
        return {"task": self.task, "inner_episode": self._inner}

    def _observation(self, done: bool, reward: float) -> np.ndarray:
        parts = [self._position, [float(done)]] + ([[reward]] if self.prev_reward else [])
        return np.concatenate(parts).astype(np.float32)
