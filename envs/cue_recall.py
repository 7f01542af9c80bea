"""Cue recall: a smoke task that separates a memory policy from a memoryless one in minutes."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CueRecall(gym.Env):
    """Cue recall with a configurable delay (this project's own smoke task).

    ## Description
    A cue (one of ``num_cues`` symbols) is shown at t = 0, followed by ``delay`` blank steps,
    then a query. The action taken at the query is the answer: the cue's index pays +1, anything
    else -1. Actions before the query are ignored. Preferred to a passive T-maze, where PPO's
    policy tends to collapse before it explores the junction. ``delay`` = 5 learns in about
    10-50k steps with a small recurrent PPO; ``delay`` = 30-200 is a long-memory gate.

    ## Observation space
    ``Box(0, 1, (num_cues + 1,), float32)``: the cue one-hot at t = 0, all zeros during the
    delay, and ``[0, ..., 0, 1]`` (the query flag) at the query.

    ## Action space
    ``Discrete(num_cues)``: the index of the recalled cue (only the answer at the query counts).

    ## Rewards
    0 before the query; +1 for the right answer, -1 otherwise. A perfect-memory policy scores
    +1; the best memoryless policy 2 / ``num_cues`` - 1 in expectation (0 for two cues).

    ## Termination
    Terminated after exactly ``delay + 2`` steps (``delay + 1`` steps reach the query, one more
    answers it). ``info["success"]`` on the last step: the answer was right.

    ## Registered ids
    ``rllib_shm/CueRecall-D<d>-v0`` for d = 5, 10, 30, 100, 200, 300, 1000 (two cues; 10…1000 are
    the memory-length benchmark's delays).
    """

    metadata = {"render_modes": []}

    def __init__(self, delay: int = 5, num_cues: int = 2):
        if isinstance(delay, bool) or not isinstance(delay, int | np.integer) or delay < 0:
            raise ValueError(f"delay must be an integer >= 0, got {delay!r}")
        if isinstance(num_cues, bool) or not isinstance(num_cues, int | np.integer) or num_cues < 2:
            raise ValueError(f"num_cues must be an integer >= 2, got {num_cues!r}")
        self.delay = int(delay)
        self.num_cues = int(num_cues)
        self.episode_length = self.delay + 2
        self.observation_space = spaces.Box(0.0, 1.0, (self.num_cues + 1,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.num_cues)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._cue = int(self.np_random.integers(self.num_cues))
        self._t = 0
        observation = np.zeros(self.num_cues + 1, dtype=np.float32)
        observation[self._cue] = 1.0
        return observation, {}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        if self._t >= self.episode_length:
            raise RuntimeError("step() called after the episode ended; call reset()")
        self._t += 1
        observation = np.zeros(self.num_cues + 1, dtype=np.float32)
        if self._t < self.episode_length:  # delay, then the query at t = delay + 1
            if self._t == self.delay + 1:
                observation[-1] = 1.0
            return observation, 0.0, False, False, {}
        correct = int(action) == self._cue
        return observation, 1.0 if correct else -1.0, True, False, {"success": correct}
