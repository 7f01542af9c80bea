"""A test environment whose return is its success: ``length`` steps of a choice between two actions;
the last step pays 1 and reports ``info["success"] = True`` if its action is 0, else pays 0 and
reports False (``report=False``: no ``success`` at all). So RLlib's ``episode_return_mean`` and the
training success rate average the same numbers over the same episodes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class LastActionSuccess(gym.Env):
    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 3, report: bool = True) -> None:
        self.length, self.report, self.t = length, report, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t < self.length:
            return np.full(1, self.t / self.length, np.float32), 0.0, False, False, {}
        success = int(action) == 0
        info = {"success": success} if self.report else {}
        return np.ones(1, np.float32), float(success), True, False, info
