"""MiniGrid memory tasks with their egocentric image flattened to a float32 vector.

minigrid is imported inside :func:`make_minigrid_memory`, so ``import envs`` stays light.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.registry import close_matches

TASKS = ("MemoryS7", "MemoryS9", "MemoryS11", "MemoryS13", "MemoryS13Random", "MemoryS17Random")


def make_minigrid_memory(task: str, **kwargs: Any) -> gym.Env:
    """MiniGrid ``MiniGrid-<task>-v0`` (Farama minigrid), e.g. task="MemoryS7".

    ## Description
    The agent sees an object in a small start room, walks down a corridor, and must touch the
    matching one of two objects at its end: a MiniGrid analogue of Visual Match's memory
    component (not a task of the SHM paper).

    ## Observation space
    ``Box(0, 255, (147,), float32)``: minigrid's 7x7x3 symbolic egocentric view (object, colour,
    state per cell; ``ImgObsWrapper`` drops the direction and the mission), flattened.

    ## Action space
    ``Discrete(7)``: left, right, forward, pickup, drop, toggle, done (minigrid's table).

    ## Rewards
    1 - 0.9 * t / max_steps for touching the matching object, 0 otherwise; random ~ 0.15 on S7.

    ## Termination
    Terminated when either object is touched; truncated after max_steps = 5 * size^2
    (245 for S7 ... 1445 for S17Random). ``info["success"]``: the episode paid a reward.

    ## Registered ids
    ``rllib_shm/MiniGrid-MemoryS7-v0``, ``-MemoryS9-v0``, ``-MemoryS11-v0``, ``-MemoryS13-v0``,
    ``-MemoryS13Random-v0``, ``-MemoryS17Random-v0``.

    Args:
        task: one of :data:`TASKS`.
        **kwargs: passed to minigrid's ``MemoryEnv`` (e.g. ``render_mode``).
    """
    if task not in TASKS:
        raise ValueError(
            f"unknown MiniGrid memory task {task!r}; close matches: {close_matches(task, TASKS)}"
        )
    import minigrid  # noqa: F401  (registers MiniGrid-*-v0 with gymnasium)
    from gymnasium.wrappers import DtypeObservation, FlattenObservation
    from minigrid.wrappers import ImgObsWrapper

    env = gym.make(f"MiniGrid-{task}-v0", disable_env_checker=True, **kwargs)
    env = DtypeObservation(FlattenObservation(ImgObsWrapper(env)), np.float32)
    return SuccessInfo(env)


class SuccessInfo(gym.Wrapper):
    """Add ``info["success"]`` on the last step: the episode ended with a positive reward."""

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "success": terminated and reward > 0}
        return observation, float(reward), terminated, truncated, info
