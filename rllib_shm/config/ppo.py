"""``ExperimentConfig`` → RLlib ``PPOConfig``: the only module that knows RLlib's key names."""

from __future__ import annotations

import dataclasses

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_shm.config import ExperimentConfig
from rllib_shm.rllib import resolve_env
from rllib_shm.rllib.connectors import MemoryPPOConfig
from rllib_shm.rllib.module import MemoryRLModule


def model_config(config: ExperimentConfig) -> dict:
    """The module's RLlib ``model_config``; the memory's θ generator is seeded by
    ``run.seed + module.memory.seed``."""
    memory = dataclasses.replace(config.module.memory, seed=config.run.seed + config.module.memory.seed)
    return dataclasses.replace(config.module, memory=memory).to_model_config()


def build_ppo_config(config: ExperimentConfig, *, lean_states: bool = True) -> PPOConfig:
    """A PPO config on RLlib's new API stack running ``MemoryRLModule`` on ``config.env``.

    ``lean_states`` (default): keep only the recurrent states the learner reads
    (``MemoryPPOConfig``); False gives RLlib's own state handling (for benchmarks).
    Registers the env with Ray first (``resolve_env``), so call it where Ray can be initialised.
    """
    algo = config.algo
    return (
        (MemoryPPOConfig() if lean_states else PPOConfig())
        .environment(resolve_env(config.env.id), env_config=dict(config.env.config))
        .env_runners(
            num_env_runners=algo.num_env_runners,
            num_envs_per_env_runner=algo.num_envs_per_env_runner,
            num_cpus_per_env_runner=algo.num_cpus_per_env_runner,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=algo.num_learners, num_gpus_per_learner=algo.num_gpus_per_learner)
        .training(
            lr=algo.lr,
            gamma=algo.gamma,
            lambda_=algo.lambda_,
            clip_param=algo.clip_param,
            vf_loss_coeff=algo.vf_loss_coeff,
            entropy_coeff=algo.entropy_coeff,
            grad_clip=algo.grad_clip,
            num_epochs=algo.num_epochs,
            train_batch_size_per_learner=algo.train_batch_size,
            minibatch_size=algo.minibatch_size,
        )
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MemoryRLModule), model_config=model_config(config))
        .debugging(seed=config.run.seed)
    )
