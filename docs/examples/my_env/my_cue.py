"""MyCue: an example of your own memory env for ``rllib-shm`` (``env.id: my_cue:MyCue``).

Description:
    The first observation shows one of ``num_cues`` cues (one-hot). Then ``delay`` blank steps
    follow. On the last step a query flag is set, and the agent must answer with the cue it saw.
    An agent without memory can only guess: its best mean return is ``2 / num_cues - 1``.

Observation space: ``Box(0, 1, (num_cues + 1,), float32)``, the cue's one-hot, then the query flag.
Action space: ``Discrete(num_cues)``. The action is read on the last step only.

| action | meaning                       |
|--------|-------------------------------|
| k      | "the cue was k" (last step)   |

Rewards: +1 for the right answer on the last step, -1 for a wrong one, 0 before.
Termination: the answer, after ``delay + 1`` steps, ends the episode; never truncated.
Info: ``success`` on the last step (``run.stop_success`` and the success rate read it).

Any ``gymnasium.Env`` works the same way: RLlib builds it with ``env.config`` as keyword arguments,
in the driver and in every Ray worker. Use ``self.np_random`` for randomness, so seeds reproduce.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class MyCue(gym.Env):
    def __init__(self, num_cues: int = 4, delay: int = 8) -> None:
        if num_cues < 2 or delay < 0:
            raise ValueError(f"MyCue needs num_cues ≥ 2 and delay ≥ 0, got {num_cues}, {delay}")
        self.num_cues, self.delay = num_cues, delay
        self.observation_space = gym.spaces.Box(0.0, 1.0, (num_cues + 1,), np.float32)
        self.action_space = gym.spaces.Discrete(num_cues)
        self.cue, self.t = 0, 0

    def _observation(self, cue: int | None = None, query: bool = False) -> np.ndarray:
        observation = np.zeros(self.num_cues + 1, np.float32)
        if cue is not None:
            observation[cue] = 1.0
        observation[-1] = float(query)
        return observation

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.cue, self.t = int(self.np_random.integers(self.num_cues)), 0
        return self._observation(cue=self.cue, query=self.delay == 0), {}

    def step(self, action):
        self.t += 1
        if self.t <= self.delay:  # a blank step; the query comes with the last of them
            return self._observation(query=self.t == self.delay), 0.0, False, False, {}
        success = int(action) == self.cue
        return self._observation(), 1.0 if success else -1.0, True, False, {"success": success}
