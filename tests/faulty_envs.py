"""Test environments with one fault each, for the preflight's checks (``tests/test_bad_inputs.py``):
a small Box-observation env whose spaces, observations, ``__init__`` or ``step`` are wrong in one way."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class Small(gym.Env):
    """Box(0, 1, (2,)) observations, Discrete(2) actions, 5 steps; the base of the faulty envs below."""

    observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self) -> None:
        self.t = 0

    def observe(self) -> np.ndarray:
        return np.full(2, 0.5, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observe(), {}

    def step(self, action):
        self.t += 1
        return self.observe(), 0.0, self.t >= 5, False, {}


class DictActions(Small):
    action_space = gym.spaces.Dict({"move": gym.spaces.Discrete(2), "speak": gym.spaces.Discrete(3)})


class MultiBinaryActions(Small):
    action_space = gym.spaces.MultiBinary(3)


class OutOfSpace(Small):
    def observe(self) -> np.ndarray:
        return np.full(2, 7.0, np.float32)  # the space says [0, 1]


class NanObservations(Small):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def observe(self) -> np.ndarray:
        return np.full(2, np.nan if self.t >= 2 else 0.0, np.float32)


class StepRaises(Small):
    def step(self, action):
        raise RuntimeError("the simulator lost its connection")


class InitRaises(Small):
    def __init__(self) -> None:
        raise RuntimeError("no licence file found")
