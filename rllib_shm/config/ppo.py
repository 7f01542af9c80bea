"""``ExperimentConfig`` → RLlib ``PPOConfig``: the only module that knows RLlib's key names."""

from __future__ import annotations

import gymnasium as gym
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.episodes import resolve_whole_episodes
from rllib_shm.rllib import resolve_env
from rllib_shm.rllib.connectors import MemoryPPOConfig
from rllib_shm.rllib.module import MemoryRLModule
from rllib_shm.rllib.module_config import ModuleConfig
from rllib_shm.rllib.success import SuccessMetric
from rllib_shm.rllib.theta_streams import MemoryEnvRunner


def model_config(config: ExperimentConfig) -> dict:
    """The module's RLlib ``model_config``. Each env runner reseeds the memory's θ generator from
    (``run.seed``, ``module.memory.seed``, its worker index): ``rllib/theta_streams.py``."""
    return config.module.to_model_config()


def rllib_lstm_model_config(module: ModuleConfig) -> DefaultModelConfig:
    """``module.rllib_lstm``: RLlib's default PPO module with its built-in LSTM, sized from the
    fields that map onto it (``rllib/module_config.py``); every other setting is RLlib's default
    (tanh encoder MLP, ReLU heads)."""
    return DefaultModelConfig(
        fcnet_hiddens=list(module.encoder_hiddens),
        head_fcnet_hiddens=list(module.head_hiddens),
        vf_share_layers=module.shared_trunk,
        use_lstm=True,
        lstm_cell_size=module.memory.mem_size,
        max_seq_len=module.max_seq_len,
    )


def build_module(config: ExperimentConfig, observation_space: gym.Space, action_space: gym.Space) -> RLModule:
    """The RLModule ``config`` trains, built outside RLlib (pre-flight checks, estimates; under
    ``torch.device("meta")`` nothing is allocated): ``MemoryRLModule`` (``MemorySACModule`` with
    ``algo.name: sac``), or with
    ``module.rllib_lstm`` RLlib's default PPO module."""
    if config.algo.name == "sac":
        from rllib_shm.config.sac import sac_model_config
        from rllib_shm.rllib.sac_module import MemorySACModule

        return MemorySACModule(observation_space=observation_space, action_space=action_space,
                               model_config=sac_model_config(config))
    if config.module.rllib_lstm:
        spec = PPOConfig().get_default_rl_module_spec()
        spec.observation_space, spec.action_space = observation_space, action_space
        spec.model_config = rllib_lstm_model_config(config.module)
        return spec.build()
    return MemoryRLModule(observation_space=observation_space, action_space=action_space,
                          model_config=model_config(config))


def shared_settings(algorithm, config: ExperimentConfig, **sampling):
    """What PPO and SAC configure alike, on ``algorithm`` (an RLlib ``AlgorithmConfig``): the env,
    the env runners' resources (plus ``sampling``: the algorithm's own ``env_runners`` arguments),
    fault tolerance and the learners."""
    algo = config.algo
    return (
        algorithm
        .environment(resolve_env(config.env.id), env_config=dict(config.env.config))
        .env_runners(
            num_env_runners=algo.num_env_runners,
            num_envs_per_env_runner=algo.num_envs_per_env_runner,
            num_cpus_per_env_runner=algo.num_cpus_per_env_runner,
            **sampling,
        )
        .fault_tolerance(
            restart_failed_env_runners=algo.restart_failed_env_runners,
            max_num_env_runner_restarts=algo.max_env_runner_restarts,
            # restart a crashed runner at once (RLlib waits 60 s by default), so it rejoins within a few iterations
            delay_between_env_runner_restarts_s=0.0,
        )
        .learners(num_learners=algo.num_learners, num_gpus_per_learner=algo.num_gpus_per_learner)
    )


def build_ppo_config(config: ExperimentConfig, *, lean_states: bool = True) -> PPOConfig:
    """A PPO config on RLlib's new API stack running ``MemoryRLModule`` on ``config.env``.

    ``lean_states`` (default): keep only the recurrent states the learner reads
    (``MemoryPPOConfig``); False gives RLlib's own state handling (for benchmarks). With
    ``module.rllib_lstm`` the module is RLlib's default PPO module with its built-in LSTM
    (``rllib_lstm_model_config``) under RLlib's plain ``PPOConfig``: its own state handling, no
    θ streams (``lean_states`` does not apply), the project's ``MemoryEnvRunner`` (each env seeded
    once); every other setting is the same. Failed env
    runners are restarted (``algo.restart_failed_env_runners``); the run goes on with the others
    meanwhile. Every env runner logs the episodes' ``info["success"]`` (``SuccessMetric``,
    ``rllib/success.py``), where the env reports it. Registers the env with Ray first
    (``resolve_env``), so call it where Ray can be initialised. With ``algo.whole_episodes`` the env
    runners sample complete episodes and ``module.max_seq_len`` covers the longest
    (``config/episodes.py``).
    """
    config = resolve_whole_episodes(config)
    algo = config.algo
    if config.module.rllib_lstm:
        # the project's env runner also here: RLlib's own reseeds every env at each complete-episodes
        # sample(), and a whole-episode run would replay the same episodes every iteration
        ppo = PPOConfig().env_runners(env_runner_cls=MemoryEnvRunner)
        module = {"rl_module_spec": RLModuleSpec(), "model_config": rllib_lstm_model_config(config.module)}
    else:
        ppo = MemoryPPOConfig()
        ppo.lean_states = lean_states
        module = {"rl_module_spec": RLModuleSpec(module_class=MemoryRLModule), "model_config": model_config(config)}
    return (
        shared_settings(ppo, config, rollout_fragment_length="auto",
                        batch_mode="complete_episodes" if algo.whole_episodes else "truncate_episodes")
        .training(
            lr=algo.lr,
            gamma=algo.gamma,
            lambda_=algo.lambda_,
            clip_param=algo.clip_param,
            vf_loss_coeff=algo.vf_loss_coeff,
            entropy_coeff=algo.entropy_coeff,
            grad_clip=algo.grad_clip,
            use_kl_loss=algo.kl_coeff > 0,
            kl_coeff=algo.kl_coeff,
            kl_target=algo.kl_target,
            num_epochs=algo.num_epochs,
            train_batch_size_per_learner=algo.train_batch_size,
            minibatch_size=algo.minibatch_size,
        )
        .rl_module(**module)
        .callbacks(SuccessMetric)
        .debugging(seed=config.run.seed)
    )
