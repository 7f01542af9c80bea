"""The most steps an episode of an env can last, read from what the env declares (no stepping)."""

from __future__ import annotations

import gymnasium as gym

#: attributes of an unwrapped env that bound its episodes, in order of precedence: popgym's
#: ``max_episode_length`` (Concentration: ``episode_length``), the project's envs'
#: ``episode_length``, MiniGrid's ``max_steps``
BOUND_ATTRIBUTES = ("max_episode_length", "episode_length", "max_steps")


def episode_bound(env: gym.Env) -> int | None:
    """The longest episode ``env`` can run, in env steps, or None when it declares no bound.

    The smallest of: every ``TimeLimit`` in the wrapper chain (``_max_episode_steps``), the env
    spec's ``max_episode_steps``, and the first of :data:`BOUND_ATTRIBUTES` the unwrapped env
    has. An env without any of them may run forever as far as this can tell (None).
    """
    bounds: list[int] = []
    current = env
    while True:
        for value in (getattr(current, "_max_episode_steps", None),
                      getattr(getattr(current, "spec", None), "max_episode_steps", None)):
            if isinstance(value, int) and value > 0:
                bounds.append(value)
        if not isinstance(current, gym.Wrapper):
            break
        current = current.env
    unwrapped = env.unwrapped
    for name in BOUND_ATTRIBUTES:
        value = getattr(unwrapped, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            bounds.append(value)
            break
    return min(bounds) if bounds else None
