"""``ExperimentConfig`` → RLlib ``PPOConfig``: the only module that knows RLlib's key names."""

from __future__ import annotations

from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_shm.config import ExperimentConfig
from rllib_shm.rllib import resolve_env
from rllib_shm.rllib.connectors import MemoryPPOConfig
from rllib_shm.rllib.module import MemoryRLModule


def model_config(config: ExperimentConfig) -> dict:
    """The module's RLlib ``model_config``. Each env runner reseeds the memory's θ generator from
    (``run.seed``, ``module.memory.seed``, its worker index): ``rllib/theta_streams.py``."""
    return config.module.to_model_config()


def build_ppo_config(config: ExperimentConfig, *, lean_states: bool = True) -> PPOConfig:
    """A PPO config on RLlib's new API stack running ``MemoryRLModule`` on ``config.env``.

    ``lean_states`` (default): keep only the recurrent states the learner reads
    (``MemoryPPOConfig``); False gives RLlib's own state handling (for benchmarks). Failed env
    runners are restarted (``algo.restart_failed_env_runners``); the run goes on with the others
    meanwhile. Registers the env with Ray first (``resolve_env``), so call it where Ray can be
    initialised.
    """
    algo = config.algo
    ppo = MemoryPPOConfig()
    ppo.lean_states = lean_states
    return (
        ppo
        .environment(resolve_env(config.env.id), env_config=dict(config.env.config))
        .env_runners(
            num_env_runners=algo.num_env_runners,
            num_envs_per_env_runner=algo.num_envs_per_env_runner,
            num_cpus_per_env_runner=algo.num_cpus_per_env_runner,
            rollout_fragment_length="auto",
        )
        .fault_tolerance(
            restart_failed_env_runners=algo.restart_failed_env_runners,
            max_num_env_runner_restarts=algo.max_env_runner_restarts,
            # restart a crashed runner at once (RLlib waits 60 s by default), so it rejoins within a few iterations
            delay_between_env_runner_restarts_s=0.0,
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
