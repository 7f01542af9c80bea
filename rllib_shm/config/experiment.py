"""The experiment configuration: four frozen sections, the one source of a run's settings.

    env:    which task (any id ``rllib_shm.rllib.resolve_env`` accepts) and its kwargs
    module: the memory RLModule (``ModuleConfig``, with the nested ``memory``: ``MemoryConfig``)
    algo:   the algorithm (``name``: ppo | sac), PPO's flat fields, SAC's ``sac`` section, resources
    run:    seed, budget, checkpoints, outputs, tracking

Unknown or misspelled keys raise a ``ValueError`` naming the key (as ``section.key``) and the valid
ones; values are type-checked against the dataclass fields before any work starts
(``config/typed.py``). YAML and ``--set`` are read by ``config/loading.py``; RLlib's config names live
only in ``config/ppo.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rllib_shm.config.sac_section import PPO_ONLY_FIELDS, SACSection, check_algorithm_fields
from rllib_shm.config.typed import build, plain
from rllib_shm.memory import MemoryConfig
from rllib_shm.rllib.module_config import ModuleConfig


@dataclass(frozen=True)
class EnvSection:
    id: str = "rllib_shm/popgym-RepeatFirstEasy-v0"  # project id, gymnasium id or module:Class
    config: dict = field(default_factory=dict)  # constructor kwargs (RLlib env_config)


@dataclass(frozen=True)
class AlgoSection:
    lr: float = 5e-4  # Adam learning rate
    gamma: float = 0.99  # discount
    lambda_: float = 0.95  # GAE λ (YAML key: lambda_)
    clip_param: float = 0.2  # PPO clip
    vf_loss_coeff: float = 0.5  # value loss weight
    entropy_coeff: float = 0.0  # entropy bonus
    grad_clip: float | None = 1.0  # global gradient-norm clip (None: off)
    num_epochs: int = 4  # SGD passes over each train batch
    train_batch_size: int = 2000  # env steps per iteration (per learner)
    minibatch_size: int = 500  # env steps per SGD minibatch
    num_env_runners: int = 0  # remote sampling workers (0: sample in the driver/trial process)
    num_envs_per_env_runner: int = 8  # vectorised envs per runner
    num_cpus_per_env_runner: float = 1.0
    num_learners: int = 0  # remote learners (0: learn in the driver/trial process)
    num_gpus_per_learner: float = 0.0  # fractions let several trials share a GPU
    restart_failed_env_runners: bool = True  # a crashed env runner is restarted; the run goes on
    max_env_runner_restarts: int = 100  # then the run fails
    # Whole-episode BPTT (docs/memory-length.md; the official SHM runs: complete_episodes, max_seq_len =
    # horizon): complete episodes only, each one learning sequence from the initial state, no rollout or
    # gradient cut inside an episode; module.max_seq_len becomes the env's longest episode + 1
    # (config/episodes.py), and an env without a bound is refused.
    whole_episodes: bool = False
    kl_coeff: float = 0.2  # initial KL penalty coefficient (RLlib's default; official SHM: 0.2); 0: no KL term
    kl_target: float = 0.01  # KL the coefficient adapts to (RLlib's default; official SHM: 0.01)
    name: str = "ppo"  # ppo | sac (recurrent SAC; SAC-Discrete on discrete actions): config/sac_section.py
    sac: SACSection = field(default_factory=SACSection)  # SAC's settings (only with name: sac)

    def __post_init__(self) -> None:
        check_algorithm_fields(self)
        for name in ("lr", "gamma", "clip_param"):
            if not getattr(self, name) > 0:
                raise ValueError(f"algo.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.lambda_ <= 1 or not 0 < self.gamma <= 1:
            raise ValueError(f"algo.gamma must be in (0, 1] and algo.lambda_ in [0, 1], got "
                             f"{self.gamma}, {self.lambda_}")
        for name in ("num_epochs", "train_batch_size", "minibatch_size", "num_envs_per_env_runner"):
            if getattr(self, name) < 1:
                raise ValueError(f"algo.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"algo.minibatch_size ({self.minibatch_size}) must not exceed "
                             f"algo.train_batch_size ({self.train_batch_size})")
        for name in ("restart_failed_env_runners", "whole_episodes"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"algo.{name} must be true or false, got {getattr(self, name)!r}")
        if not self.kl_target > 0:
            raise ValueError(f"algo.kl_target must be > 0, got {self.kl_target}")
        for name in ("max_env_runner_restarts", "num_env_runners", "num_learners", "num_gpus_per_learner",
                     "num_cpus_per_env_runner",
                     "vf_loss_coeff", "entropy_coeff", "kl_coeff"):
            if getattr(self, name) < 0:
                raise ValueError(f"algo.{name} must be ≥ 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RunSection:
    name: str = "run"  # run name (directory prefix, MLflow run name)
    seed: int = 0  # seeds RLlib (envs, sampling, init) and the memory's θ generator
    stop_iters: int = 50  # training iterations
    stop_return: float | None = None  # stop early once the mean return reaches this
    stop_success: float | None = None  # stop early once success_rate (envs reporting info["success"]) reaches this
    # stop once this many env steps are sampled (a budget in env steps: whole-episode iterations vary in size)
    stop_env_steps: int | None = None
    checkpoint_every: int = 10  # iterations between checkpoints (and one at the end)
    output_dir: str = "results"  # runs go to <output_dir>/<name>-<time>/
    mlflow_uri: str | None = None  # tracking URI; default sqlite:///<abs output_dir>/mlflow.db
    mlflow_experiment: str | None = None  # MLflow experiment; default: a study's tune.name, "rllib-shm" for train

    def __post_init__(self) -> None:
        if self.stop_iters < 1 or self.checkpoint_every < 1:
            raise ValueError(f"run.stop_iters and run.checkpoint_every must be ≥ 1, got "
                             f"{self.stop_iters}, {self.checkpoint_every}")
        if self.stop_env_steps is not None and (isinstance(self.stop_env_steps, bool) or self.stop_env_steps < 1):
            raise ValueError(f"run.stop_env_steps must be a positive number of env steps, got {self.stop_env_steps!r}")
        if self.stop_success is not None and not 0 <= self.stop_success <= 1:
            raise ValueError(f"run.stop_success is a success rate in [0, 1] (e.g. 0.95), got {self.stop_success}")
        if not self.name or "/" in self.name:
            raise ValueError(f"run.name must be a non-empty name without '/', got {self.name!r}")
        if self.seed < 0:
            raise ValueError(f"run.seed must be ≥ 0 (it seeds numpy and gymnasium), got {self.seed}")


@dataclass(frozen=True)
class ExperimentConfig:
    env: EnvSection = field(default_factory=EnvSection)
    module: ModuleConfig = field(default_factory=ModuleConfig)
    algo: AlgoSection = field(default_factory=AlgoSection)
    run: RunSection = field(default_factory=RunSection)

    def __post_init__(self) -> None:
        if self.algo.name == "sac" and self.module.rllib_lstm:
            raise ValueError("module.rllib_lstm: true with algo.name: sac: RLlib's built-in LSTM module is a PPO "
                             "baseline; SAC runs the project's memories (module.memory.kind: lstm)")
        # module.shared_trunk: null (the default) follows the algorithm; the config holds the decided value
        object.__setattr__(self, "module", self.module.resolve_shared_trunk(self.algo.name))

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-safe dict (tuples as lists)."""
        return plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        return build(cls, data, "")


__all__ = ["PPO_ONLY_FIELDS", "SACSection",
           "AlgoSection", "EnvSection", "ExperimentConfig", "MemoryConfig", "ModuleConfig", "RunSection"]
