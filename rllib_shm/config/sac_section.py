"""SAC's own settings (``algo.sac``) and the rule that keeps PPO's and SAC's settings apart.

``algo.name: ppo`` (default) trains with PPO from the flat fields of ``algo``; ``algo.name: sac``
trains the recurrent SAC (discrete actions: SAC-Discrete) of ``rllib/sac_*.py`` from the nested
``algo.sac`` section. Shared by both: ``gamma``, ``grad_clip`` and the resource / fault-tolerance
fields. :data:`PPO_ONLY_FIELDS` names, in one place, the flat fields that only PPO reads; with
``name: sac`` any of them set away from its default is refused by name, and with ``name: ppo``
any ``sac`` setting away from its default is refused by name (no silent ignoring).

Defaults follow the paper's off-policy code (SHM.md §7, ``docs/off-policy.md``): 0.25 gradient
updates per env step, lr 3e-4, τ 0.005, whole episodes from the zero state, θ drawn fresh on
every forward pass, replay up to 1e6 env steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from rllib_shm.memory import MemoryConfig

ALGORITHMS = ("ppo", "sac")
REPLAY_MODES = ("episodes", "chunks")
CHUNK_START_STATES = ("zero", "stored")
THETA_REPLAY_MODES = ("fresh", "acting")

#: the flat ``algo`` fields only PPO reads (refused away from their defaults when ``name: sac``)
PPO_ONLY_FIELDS = ("lr", "lambda_", "clip_param", "vf_loss_coeff", "entropy_coeff", "num_epochs",
                   "train_batch_size", "minibatch_size", "whole_episodes", "kl_coeff", "kl_target")


@dataclass(frozen=True)
class SACSection:
    """Recurrent SAC / SAC-Discrete settings (``algo.sac``), read only when ``algo.name: sac``."""

    updates_per_step: float = 0.25  # gradient updates per env step (update-to-data ratio)
    warmup_episodes: int = 10  # finished episodes in the replay buffer before the first update
    batch_episodes: int = 32  # whole episodes (replay: chunks) per gradient update, per learner
    env_steps_per_iteration: int = 1000  # env steps one training iteration samples (progress, checkpoints)
    rollout_steps: int = 8  # env steps each env takes between updates (RLlib's rollout_fragment_length)
    actor_lr: float = 3e-4  # Adam learning rate of the actor (trunk + policy head)
    critic_lr: float = 3e-4  # Adam learning rate of the critic (trunk + both Q heads)
    alpha_lr: float = 3e-4  # Adam learning rate of log α (automatic temperature)
    tau: float = 0.005  # Polyak rate of the target critic: θ' ← τ θ + (1 − τ) θ'
    alpha: float | None = None  # fixed temperature α (e.g. 0.1, the paper's SAC-Discrete); null: automatic
    initial_alpha: float = 1.0  # α's start when automatic
    target_entropy: float | None = None  # automatic α's target; null: −dim(A) (continuous), 0.5·ln|A| (discrete)
    replay_capacity: int = 1_000_000  # env steps the replay buffer holds (oldest episodes evicted)
    replay: str = "episodes"  # episodes: whole, from the zero state | chunks: windows after a burn-in
    chunk_length: int = 64  # replay=chunks: learned steps per window
    burn_in: int = 32  # replay=chunks: steps before the window that only warm the memories up (no loss)
    # replay=chunks: where a window's burn-in starts. zero: any step, from the zero state (nothing stored) |
    # stored: aligned chunks, from the acting state (actor's and critic's) kept every chunk_length steps;
    # the burn-in is rounded up to whole chunks
    chunk_start_state: str = "zero"
    theta_replay: str = "fresh"  # fresh: every forward draws θ rows (paper's code) | acting: actor replays its draws
    critic_memory: MemoryConfig | None = None  # the critic trunk's memory; null: module.memory (the actor's)

    def __post_init__(self) -> None:
        for name in ("updates_per_step", "actor_lr", "critic_lr", "tau", "initial_alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.alpha_lr < 0:
            raise ValueError(f"alpha_lr must be ≥ 0, got {self.alpha_lr}")
        if not self.tau <= 1:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha (a fixed temperature) must be > 0 or null (automatic), got {self.alpha}")
        for name in ("warmup_episodes",):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("batch_episodes", "env_steps_per_iteration", "rollout_steps", "replay_capacity",
                     "chunk_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.burn_in < 0:
            raise ValueError(f"burn_in must be ≥ 0, got {self.burn_in}")
        if self.replay not in REPLAY_MODES:
            raise ValueError(f"replay must be one of {list(REPLAY_MODES)}, got {self.replay!r}")
        if self.chunk_start_state not in CHUNK_START_STATES:
            raise ValueError(f"chunk_start_state must be one of {list(CHUNK_START_STATES)}, "
                             f"got {self.chunk_start_state!r}")
        if self.chunk_start_state == "stored" and self.replay != "chunks":
            raise ValueError("chunk_start_state: stored applies to replay: chunks only (whole episodes start from "
                             f"the zero state); replay is {self.replay!r}")
        if self.theta_replay not in THETA_REPLAY_MODES:
            raise ValueError(f"theta_replay must be one of {list(THETA_REPLAY_MODES)}, got {self.theta_replay!r}")
        if self.target_entropy is not None and not math.isfinite(self.target_entropy):
            raise ValueError(f"target_entropy must be finite or null, got {self.target_entropy}")


def check_algorithm_fields(algo) -> None:
    """ValueError naming every setting of the algorithm ``algo.name`` does not run, set away from its
    default: PPO-only flat fields under ``name: sac``, ``sac.*`` under ``name: ppo``."""
    if algo.name not in ALGORITHMS:
        raise ValueError(f"algo.name must be one of {list(ALGORITHMS)}, got {algo.name!r}")
    defaults = {f.name: f.default for f in fields(type(algo))}
    if algo.name == "sac":
        bad = [f"algo.{name}" for name in PPO_ONLY_FIELDS if getattr(algo, name) != defaults[name]]
        if bad:
            raise ValueError(f"{', '.join(bad)}: PPO-only setting(s) with algo.name: sac; SAC's settings are "
                             f"algo.sac.* (e.g. algo.sac.actor_lr); remove them or use algo.name: ppo")
    else:
        reference = SACSection()
        bad = [f"algo.sac.{f.name}" for f in fields(SACSection)
               if getattr(algo.sac, f.name) != getattr(reference, f.name)]
        if bad:
            raise ValueError(f"{', '.join(bad)}: SAC setting(s) with algo.name: {algo.name}; set algo.name: sac "
                             "or remove them")
