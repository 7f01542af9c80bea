"""``ExperimentConfig`` (``algo.name: sac``) → ``MemorySACConfig``: the only module that knows
RLlib's SAC config names. ``build_algorithm_config`` picks PPO or SAC from ``algo.name``."""

from __future__ import annotations

import dataclasses

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.ppo import shared_settings
from rllib_shm.rllib.sac_algorithm import MemorySACConfig
from rllib_shm.rllib.sac_module import SAC_KEY, MemorySACModule
from rllib_shm.rllib.success import SuccessMetric


def sac_model_config(config: ExperimentConfig) -> dict:
    """The SAC module's ``model_config``: the module's (the actor's memory is ``module.memory``)
    plus the critic memory and the θ replay mode."""
    sac = config.algo.sac
    critic = None if sac.critic_memory is None else dataclasses.asdict(sac.critic_memory)
    return {**config.module.to_model_config(),
            SAC_KEY: {"critic_memory": critic, "theta_replay": sac.theta_replay,
                      "chunk_start_state": sac.chunk_start_state, "chunk_length": sac.chunk_length}}


def build_sac_config(config: ExperimentConfig) -> MemorySACConfig:
    """A recurrent SAC config (SAC-Discrete on discrete actions) on RLlib's new API stack.

    Iterations: ``algo.sac.env_steps_per_iteration`` env steps (RLlib's
    ``min_sample_timesteps_per_iteration``); sampling rounds of ``algo.sac.rollout_steps`` steps per
    env, each followed by ``updates_per_step`` × (steps of the round) gradient updates on
    ``batch_episodes`` replayed episodes per learner; learning starts once ``warmup_episodes``
    episodes have finished. A fixed ``alpha`` is log α with learning rate 0.
    """
    algo, sac = config.algo, config.algo.sac
    learners = max(algo.num_learners, 1)
    total_batch = sac.batch_episodes * learners
    # RLlib's calculate_rr_weights sizes a sampling round as if the driver's env runner sampled
    # beside the n remote ones ((n + 1) runners); with n ≥ 1 only the remote ones sample, so without
    # the factor n / (n + 1) a round would run u·(n + 1)/n updates per env step (0.5 for u = 0.25, n = 1)
    samplers = max(algo.num_env_runners, 1) / (algo.num_env_runners + 1)
    algorithm = MemorySACConfig()
    algorithm.warmup_episodes = sac.warmup_episodes
    return (
        shared_settings(algorithm, config, rollout_fragment_length=sac.rollout_steps)
        .training(
            gamma=algo.gamma,
            grad_clip=algo.grad_clip,
            actor_lr=sac.actor_lr,
            critic_lr=sac.critic_lr,
            alpha_lr=0.0 if sac.alpha is not None else sac.alpha_lr,
            initial_alpha=sac.alpha if sac.alpha is not None else sac.initial_alpha,
            target_entropy="auto" if sac.target_entropy is None else sac.target_entropy,
            tau=sac.tau,
            twin_q=True,
            n_step=1,
            train_batch_size_per_learner=sac.batch_episodes,
            training_intensity=sac.updates_per_step * total_batch * samplers,
            replay_buffer_config={
                "type": "EpisodeReplayBuffer",  # MemorySAC builds MemoryEpisodeReplay
                "capacity": sac.replay_capacity,
                "max_len": config.module.max_seq_len,
                "replay": sac.replay,
                "chunk_length": sac.chunk_length,
                "burn_in": sac.burn_in,
                "start_states": sac.chunk_start_state,
                "seed": config.run.seed,
            },
        )
        .reporting(min_sample_timesteps_per_iteration=sac.env_steps_per_iteration, min_time_s_per_iteration=0)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=MemorySACModule), model_config=sac_model_config(config))
        .callbacks(SuccessMetric)
        .debugging(seed=config.run.seed)
    )


def build_algorithm_config(config: ExperimentConfig) -> AlgorithmConfig:
    """RLlib's config of the algorithm ``config.algo.name`` names (PPO or recurrent SAC)."""
    if config.algo.name == "sac":
        return build_sac_config(config)
    from rllib_shm.config.ppo import build_ppo_config

    return build_ppo_config(config)
