"""A continuous-action memory task for the SAC tests (test-local, not registered).

A cue c ∈ {−1, +1} is shown at t = 0 (``obs = [c, 0]``), then ``delay`` blank steps
(``[0, 0]``), then the query (``[0, 1]``); the action a ∈ [−1, 1] taken at the query pays
1 − |a − c|, every other step pays 0 and its action is ignored. Episodes last ``delay + 2`` steps.
With memory the best return is 1; without, the best is 0 (a = 0). ``info["success"]``: |a − c| < 0.5.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class ContinuousCue(gym.Env):
    def __init__(self, delay: int = 3):
        self.delay = int(delay)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._cue = float(self.np_random.choice((-1.0, 1.0)))
        self._t = 0
        return np.array([self._cue, 0.0], np.float32), {}

    def step(self, action):
        self._t += 1
        if self._t <= self.delay + 1:
            query = float(self._t == self.delay + 1)
            return np.array([0.0, query], np.float32), 0.0, False, False, {}
        error = abs(float(np.clip(np.asarray(action).reshape(-1)[0], -1, 1)) - self._cue)
        return np.zeros(2, np.float32), 1.0 - error, True, False, {"success": error < 0.5}
