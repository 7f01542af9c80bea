"""The configured env, built and played here before Ray starts, with every problem named.

``open_env`` builds ``env.id`` with ``env.config`` in this process. Every kwarg is checked first
(a name the env does not take is refused with the names it takes; a number must be finite), and
whatever the constructor raises becomes a ``ValueError`` naming the env: a kwarg it refused, an
optional dependency that is not installed (Box2D, MuJoCo: gymnasium's ``DependencyNotInstalled``),
or its own error.

``play`` checks the action space (the module acts in ``Discrete``, ``MultiDiscrete`` and ``Box``
spaces only), then resets the env and takes ``PLAY_STEPS`` steps of sampled actions (resetting
when an episode ends). Every observation must lie in the observation space (its shape and bounds)
and be finite, every reward finite. An exception from ``reset`` or ``step`` is reported with the
env's name, the step and the error. Without this, such envs failed only inside RLlib's env runners,
after Ray had started and a run directory and MLflow run existed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

PLAY_STEPS = 32  # steps of sampled actions; well under a second for every env of the project
SUPPORTED_ACTIONS = (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.Box)


class EnvProblem(ValueError):
    """A problem of the configured env, found by ``open_env`` or ``play``."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def check_env_config(env_id: str, env_config: Mapping[str, Any]) -> None:
    """Every kwarg of ``env_config`` is one ``env_id`` takes (where its constructor says which), and
    every number in it is finite."""
    from rllib_shm.rllib import env_kwargs

    accepted = env_kwargs(env_id)
    unknown = [key for key in env_config if accepted is not None and key not in accepted]
    if unknown:
        raise EnvProblem(f"env.config {dict(env_config)} does not fit {env_id}: it takes no keyword argument "
                         f"{', '.join(map(repr, unknown))}; it takes {', '.join(accepted) or 'none'}")
    for key, value in env_config.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise EnvProblem(f"env.config.{key}: expected a finite number, got {value}")


def open_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> gym.Env:
    """Build ``env_id`` with ``env_config`` (see the module docstring); EnvProblem for anything wrong."""
    from rllib_shm.rllib import make_env, resolve_env

    env_config = dict(env_config or {})
    resolve_env(env_id)  # an unknown id fails here with its own message and close matches
    try:
        check_env_config(env_id, env_config)  # imports the env's module: a missing extra may fail here
        return make_env(env_id, env_config)
    except EnvProblem:
        raise
    except TypeError as error:
        raise EnvProblem(f"env.config {env_config} does not fit {env_id}: {error}") from None
    except Exception as error:  # noqa: BLE001 - the env's own code: any error is the env's, named here
        raise build_failure(env_id, env_config, error) from None


def build_failure(env_id: str, env_config: Mapping[str, Any], error: Exception) -> EnvProblem:
    """What the constructor of ``env_id`` raised, as one line naming the env."""
    if isinstance(error, gym.error.DependencyNotInstalled):
        return EnvProblem(f"env {env_id} needs an optional dependency that is not installed: {error}")
    if isinstance(error, ImportError):
        return EnvProblem(f"env {env_id} needs a module that cannot be imported: {error}")
    given = f" with env.config {dict(env_config)}" if env_config else ""
    return EnvProblem(f"env {env_id}{given} could not be built: {_first_line(error)}")


def check_action_space(env_id: str, space: gym.Space) -> None:
    if not isinstance(space, SUPPORTED_ACTIONS):
        raise EnvProblem(f"env {env_id}: its action space {space} is not supported; the module acts in Discrete, "
                         "MultiDiscrete or Box action spaces (wrap the env to map its actions onto one)")


def check_observation(env_id: str, space: gym.Space, observation: Any, where: str) -> None:
    """EnvProblem unless ``observation`` lies in ``space`` and is finite."""
    if not isinstance(space, gym.spaces.Box):
        if not space.contains(observation):
            raise EnvProblem(f"env {env_id}: the observation at {where} is not in its observation space {space}")
        return
    array = np.asarray(observation)
    if array.shape != space.shape:
        raise EnvProblem(f"env {env_id}: the observation at {where} has shape {array.shape}, but its observation "
                         f"space {space} has shape {space.shape}")
    if array.dtype.kind not in "biuf":
        raise EnvProblem(f"env {env_id}: the observation at {where} has dtype {array.dtype}, expected numbers")
    values = array.astype(np.float64)
    if not np.all(np.isfinite(values)):
        count = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise EnvProblem(f"env {env_id}: the observation at {where} holds {count} non-finite value(s) (NaN or "
                         "±inf); the module cannot learn from them")
    outside = (values < space.low) | (values > space.high)
    if np.any(outside):
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise EnvProblem(f"env {env_id}: the observation at {where} lies outside its observation space {space}: "
                         f"{int(outside.sum())} of {values.size} entries, e.g. {values[index]:g} at index {index} "
                         f"(bounds [{space.low[index]:g}, {space.high[index]:g}])")


def play(env: gym.Env, env_id: str, seed: int, steps: int = PLAY_STEPS) -> None:
    """Reset ``env`` and take ``steps`` sampled actions, checking what comes back (module docstring)."""
    check_action_space(env_id, env.action_space)
    env.action_space.seed(seed)
    where = "reset"
    try:
        observation, _ = env.reset(seed=seed)
        check_observation(env_id, env.observation_space, observation, where)
        for step in range(steps):
            where = f"step {step}"
            observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            check_observation(env_id, env.observation_space, observation, where)
            if not math.isfinite(float(reward)):
                raise EnvProblem(f"env {env_id}: the reward at {where} is {reward}, expected a finite number")
            if terminated or truncated:
                where = f"reset after step {step}"
                observation, _ = env.reset()
                check_observation(env_id, env.observation_space, observation, where)
    except EnvProblem:
        raise
    except Exception as error:  # noqa: BLE001 - the env's own code: any error is the env's, named here
        raise EnvProblem(f"env {env_id} failed at {where} (sampled actions, seed {seed}): {_first_line(error)}") \
            from None
