"""Evaluate a trained module: run episodes threading the recurrent state, report, record memory.

Dimension letters: T time, H memory size.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.spaces.space_utils import unsquash_action

from rllib_shm.memory import SHMCell
from rllib_shm.rllib.module import STEP, THETA_COLUMN


@dataclass
class EpisodeLog:
    """What one recorded episode did: per-step memories, calibrations and rewards."""

    memory: list = field(default_factory=list)  # M_t [H,H] (SHM) or h_t [H]
    calibration: list = field(default_factory=list)  # C_t [H,H] (SHM only)
    rewards: list = field(default_factory=list)


def _batched_state(module) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).unsqueeze(0) for k, v in module.get_initial_state().items()}


def _record_step(module, obs_t: torch.Tensor, state: dict, out: dict, log: EpisodeLog) -> None:
    """Append M_t (and C_t for SHM) of the policy trunk for this step."""
    prefix = "" if module.vf_trunk is None else "pi_"
    trunk = module.trunk
    cell = trunk.memory
    state_out = out[Columns.STATE_OUT]
    if isinstance(cell, SHMCell):
        features = trunk.features(module._observations({Columns.OBS: obs_t}), state[prefix + STEP][:, 0])
        cell_state = {"memory": state[prefix + "memory"]}
        trace = cell.trace(features, cell_state, theta_indices=out.get(prefix + THETA_COLUMN), evaluation=True)
        log.calibration.append(trace["calibration"][0, 0].numpy())
        log.memory.append(state_out[prefix + "memory"][0].numpy())
    else:
        log.memory.append(state_out[prefix + "h"][0].numpy())


def run_episodes(
    module,
    env,
    episodes: int,
    seed: int,
    explore: bool = False,
    record: EpisodeLog | None = None,
) -> dict[str, Any]:
    """Run ``episodes`` episodes (seeds seed, seed+1, ...); the first is recorded into ``record``.

    Returns per-episode returns, lengths and successes (None where the env has no success notion).
    Actions: the distribution's deterministic action, or a sample when ``explore`` (drawn under a
    forked, seeded torch RNG, so the global RNG is untouched). SHM's own θ generators are reseeded
    with ``seed`` so that sampled θ (``eval_theta: sample``) is reproducible too.
    """
    module.eval()
    for trunk in module._trunks().values():
        if isinstance(trunk.memory, SHMCell):
            trunk.memory.generator.manual_seed(seed)
    returns, lengths, successes = [], [], []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index in range(episodes):
            obs, info = env.reset(seed=seed + index)
            state = _batched_state(module)
            total, steps, done, success = 0.0, 0, False, None
            while not done:
                obs_t = torch.as_tensor(np.asarray(obs)).unsqueeze(0).unsqueeze(0)
                batch = {Columns.OBS: obs_t, Columns.STATE_IN: state}
                out = module.forward_exploration(batch) if explore else module.forward_inference(batch)
                dist_cls = (module.get_exploration_action_dist_cls() if explore
                            else module.get_inference_action_dist_cls())
                dist = dist_cls.from_logits(out[Columns.ACTION_DIST_INPUTS][:, 0])
                action = (dist.sample() if explore else dist.to_deterministic().sample())[0].numpy()
                if isinstance(env.action_space, gym.spaces.Box):  # as RLlib's default normalize_actions
                    action = unsquash_action(action, env.action_space)
                if record is not None and index == 0:
                    _record_step(module, obs_t, state, out, record)
                state = out[Columns.STATE_OUT]
                obs, reward, terminated, truncated, info = env.step(action)
                if record is not None and index == 0:
                    record.rewards.append(float(reward))
                total += float(reward)
                steps += 1
                done = terminated or truncated
            if "success" in info:
                success = bool(info["success"])
            returns.append(total)
            lengths.append(steps)
            successes.append(success)
    return {"returns": returns, "lengths": lengths, "successes": successes}


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    """Mean ± std return, success rate (when the env reports one), mean episode length."""
    returns = np.asarray(raw["returns"], dtype=float)
    known = [s for s in raw["successes"] if s is not None]
    return {
        "episodes": len(returns),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "success_rate": float(np.mean(known)) if known else None,
        "episode_len_mean": float(np.mean(raw["lengths"])),
        "returns": [float(r) for r in returns],
        "lengths": [int(n) for n in raw["lengths"]],
    }


def check_spaces(module, env) -> None:
    """The env must produce what the module was trained on (same observation and action spaces)."""
    problems = []
    if env.observation_space != module.observation_space:
        problems.append(f"observation space {env.observation_space} vs checkpoint's {module.observation_space}")
    if env.action_space != module.action_space:
        problems.append(f"action space {env.action_space} vs checkpoint's {module.action_space}")
    if problems:
        raise ValueError("the env does not match the checkpoint: " + "; ".join(problems))


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` to a new file (refuses to overwrite)."""
    with open(path, "x") as f:
        json.dump(payload, f, indent=2, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v)
