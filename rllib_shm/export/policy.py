"""``OneStepPolicy``: one acting step of a ``MemoryRLModule`` with the recurrent state explicit.

Dimension letters: B batch, A action-distribution inputs, H memory size; ``*obs`` is the
observation shape and ``*S`` a state tensor's shape (SHM ``memory`` [H,H], GRU ``h`` [H], LSTM
``h``/``c`` [H], the episode ``step`` [1]; ``pi_``/``vf_`` prefixes with separate trunks).

    forward(obs [B,*obs], *state_in [B,*S] (``state_names`` order)[, *theta [B] (``theta_names``)])
        -> (action_dist_inputs [B,A], greedy_action [B,...][, value [B]], *state_out [B,*S])

``theta="expected"`` acts with the deterministic expected calibration (SHM ``eval_theta:
expected``); ``theta="sample"`` takes the θ row index of every trunk that draws one as an input, so
the caller draws (uniformly in [0, L)) and a run can be replayed. The greedy action is the one
``rllib-shm evaluate`` takes: argmax per categorical, or the Gaussian mean unsquashed to the Box
bounds (and clipped) as RLlib's ``unsquash_action`` does (SAC's squashed Gaussian: tanh of the
mean first). ``value`` is V(h) of PPO's value head. A SAC policy has no ``value`` output
(``has_value`` False): its actor has no V(h), and its critic, Q(h, a) on a trunk with its own
recurrent state, is not part of the acting step.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from torch import nn

from rllib_shm.rllib.module import MemoryRLModule

THETA_MODES = ("expected", "sample")


def acting_module(module: MemoryRLModule, theta: str) -> MemoryRLModule:
    """A copy of ``module`` (same weights) whose memories act with ``eval_theta = theta``'s
    behaviour: ``expected`` (deterministic) or ``sample`` (rows drawn, here: replayed)."""
    if theta not in THETA_MODES:
        raise ValueError(f"--theta must be one of {THETA_MODES}, got {theta!r}")
    config = module.module_config
    memory = dataclasses.replace(config.memory, eval_theta="expected" if theta == "expected" else "sample")
    # the module's own model_config (SAC's carries its critic settings) with the actor's memory replaced
    model_config = {**dict(module.model_config), **dataclasses.replace(config, memory=memory).to_model_config()}
    return module.acting_copy(model_config).eval()


class OneStepPolicy(nn.Module):
    """See the module docstring. ``module`` should come from ``acting_module``."""

    def __init__(self, module: MemoryRLModule, theta: str = "expected") -> None:
        super().__init__()
        self.module = module
        self.theta = theta
        self.state_names = list(module.get_initial_state())
        self.theta_names = module.theta_columns() if theta == "sample" else []
        self.has_value = module.has_state_value
        self.output_names = ["action_dist_inputs", "greedy_action", *(["value"] if self.has_value else []),
                             *(f"{name}_out" for name in self.state_names)]
        space = module.action_space
        self.action_space = space
        if isinstance(space, gym.spaces.Box):
            bounded = bool(np.all(space.bounded_below) and np.all(space.bounded_above))
            self.unsquash = bounded and space.dtype in (np.float32, np.float64)
            self.register_buffer("low", torch.as_tensor(space.low, dtype=torch.float32))
            self.register_buffer("high", torch.as_tensor(space.high, dtype=torch.float32))

    def greedy(self, inputs: torch.Tensor) -> torch.Tensor:
        """The deterministic action from the distribution inputs [B,A]."""
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return inputs.argmax(-1)
        if isinstance(space, gym.spaces.MultiDiscrete):
            parts = torch.split(inputs, [int(n) for n in space.nvec.ravel()], dim=-1)
            return torch.stack([part.argmax(-1) for part in parts], dim=-1)
        if isinstance(space, gym.spaces.Box):
            mean = inputs[..., : inputs.shape[-1] // 2].reshape(-1, *space.shape)
            if getattr(self.module, "squashed_actions", False):  # SAC: tanh(μ) in [−1, 1]
                mean = torch.tanh(mean)
            if not self.unsquash:
                return mean
            action = self.low + (mean + 1.0) * (self.high - self.low) / 2.0
            return torch.minimum(torch.maximum(action, self.low), self.high)
        raise ValueError(f"cannot export a greedy action for action space {space}")

    def forward(self, obs: torch.Tensor, *inputs: torch.Tensor):
        states = dict(zip(self.state_names, inputs[: len(self.state_names)], strict=True))
        thetas = inputs[len(self.state_names):]
        replay = {name: index.unsqueeze(1) for name, index in zip(self.theta_names, thetas, strict=True)}
        out = self.module.act(obs.unsqueeze(1), states, explore=False, values=self.has_value, replay=replay)
        dist_inputs = out[Columns.ACTION_DIST_INPUTS][:, 0]
        value = (out[Columns.VF_PREDS][:, 0],) if self.has_value else ()
        state_out = out[Columns.STATE_OUT]
        return (dist_inputs, self.greedy(dist_inputs), *value, *(state_out[name] for name in self.state_names))
