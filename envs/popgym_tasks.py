"""POPGym tasks (popgym==1.0.7) with the observation wrappers of POPGym's baselines or raw.

popgym is imported inside :func:`make_popgym`, so ``import envs`` stays light. popgym registers
its envs as ``popgym-<Name><Level>-v0`` when imported; the env class is built from that spec's
entry point (not through ``gymnasium.make``, whose checker wrappers popgym's wrappers reject).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.wrappers import DtypeObservation, FlattenObservation

from envs.registry import close_matches

WRAPPER_SETS = ("popgym", "raw", "none")
# Info keys that leak the hidden state and are reused between steps (CountRecall: the running
# counts array, mutated in place; MultiarmedBandit: the bandit payoffs).
HIDDEN_INFO_KEYS = frozenset({"counts", "bandits"})


class HiddenInfoFilter(gym.Wrapper):
    """Return a fresh info dict at every step, without the keys that leak the hidden state
    (and the reward as a Python float)."""

    def reset(self, **kwargs):
        observation, info = self.env.reset(**kwargs)
        return observation, self._filter(info)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, float(reward), terminated, truncated, self._filter(info)

    @staticmethod
    def _filter(info: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in info.items() if key not in HIDDEN_INFO_KEYS}


def make_popgym(task: str, wrappers: str = "popgym", **kwargs: Any) -> gym.Env:
    """Build the POPGym env ``popgym-<task>-v0`` (e.g. task="RepeatPreviousEasy").

    ## Description
    POPGym (Morad et al. 2023), the SHM paper's PPO benchmark: Autoencode, Battleship,
    Concentration, RepeatPrevious (Easy / Medium / Hard); RepeatFirst and CountRecall as smoke
    tasks. Each level is a separate popgym class; see popgym's docs for the rules.

    ## Observation space (``wrappers``)
    - "popgym" (default): Flatten(Antialias(PreviousAction(env))) as POPGym's baselines used
      them: [observation one-hot | previous action one-hot (0 at reset) | first-step flag
      one-hot], ``Box(0, 1, (n,), float32)``; Battleship and Concentration need the previous
      action.
    - "raw": the observation one-hot encoded, nothing added, ``Box(0, 1, (n,), float32)``:
      what RLlib's old-stack preprocessor fed the reference SHM script (raw popgym ids).
    - "none": popgym's own spaces (Discrete, Tuple, MultiDiscrete; integers).

    ## Action space
    | env | action |
    |---|---|
    | Autoencode | Discrete(4): a suit |
    | Battleship | MultiDiscrete([B, B]), B = 8 / 10 / 12: the cell to shoot |
    | Concentration | Discrete(N): the card to flip |
    | RepeatPrevious, RepeatFirst | Discrete(4): a suit |
    | CountRecall | Discrete(m + 1): a count, m = most copies of one card (26 / 26 / 16) |

    ## Rewards
    popgym's, scaled so that returns lie in about [-1, 1]; a perfect-memory policy scores +1 on
    RepeatFirst / RepeatPrevious, the best memoryless one about -0.5.

    ## Termination
    popgym's: terminated after 51 / 103 / 155 steps (RepeatPrevious), 51 / 415 / 831
    (RepeatFirst), 103 / 207 / 311 (Autoencode), 51 / 103 / 207 (CountRecall), at most
    64 / 100 / 144 (Battleship) and 104 / 208 / 104 (Concentration). ``info`` is a fresh dict at
    every step without the hidden-state keys CountRecall and MultiarmedBandit leak (``counts``,
    ``bandits``, which they also mutate in place).

    ## Registered ids
    ``rllib_shm/popgym-<Name><Level>-v0`` for the six names and three levels above.

    Args:
        task: POPGym env name and level, as in popgym's ids.
        wrappers: "popgym", "raw" or "none" (see above).
        **kwargs: passed to the POPGym env class.
    """
    if wrappers not in WRAPPER_SETS:
        raise ValueError(f"unknown wrappers {wrappers!r}; choose one of {WRAPPER_SETS}")
    import popgym  # noqa: F401  (registers popgym-*-v0 with gymnasium)
    from popgym.wrappers import Antialias, Flatten, PreviousAction

    popgym_id = f"popgym-{task}-v0"
    if popgym_id not in gym.registry:
        known = sorted(i[len("popgym-") : -len("-v0")] for i in gym.registry if i.startswith("popgym-"))
        raise ValueError(f"unknown POPGym task {task!r}; close matches: {close_matches(task, known)}")
    spec = gym.registry[popgym_id]
    env = load_env_creator(spec.entry_point)(**{**spec.kwargs, **kwargs})
    if wrappers == "popgym":
        env = DtypeObservation(Flatten(Antialias(PreviousAction(env))), np.float32)
    elif wrappers == "raw":
        env = DtypeObservation(FlattenObservation(env), np.float32)
    return HiddenInfoFilter(env)
