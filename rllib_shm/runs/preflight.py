"""Checks before anything is written: build the env and the module once in this process.

A bad env id, env kwargs that the env does not take, or a module that cannot take the env's spaces
fail here with the env's (or module's) own message, before Ray starts, before a run directory,
a study or an MLflow run exists. Used by ``train`` and by a study for its first trial's config.
"""

from __future__ import annotations

from rllib_shm.config import ExperimentConfig


def preflight(config: ExperimentConfig) -> None:
    """Build ``config``'s env and ``MemoryRLModule`` once; ValueError naming what does not fit."""
    from rllib_shm.config.ppo import model_config
    from rllib_shm.rllib import make_env
    from rllib_shm.rllib.module import MemoryRLModule

    try:
        env = make_env(config.env.id, config.env.config)
    except TypeError as error:
        raise ValueError(f"env.config {config.env.config} does not fit {config.env.id}: {error}") from None
    try:
        MemoryRLModule(observation_space=env.observation_space, action_space=env.action_space,
                       model_config=model_config(config))
    finally:
        env.close()
