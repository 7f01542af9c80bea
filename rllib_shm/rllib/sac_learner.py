"""``MemorySACLearner``: RLlib's torch SAC learner for :class:`MemorySACModule`'s padded episodes.

RLlib's SAC losses (``SACTorchLearner``: twin-Q Huber critic loss against
r_t + γ (1 − d_t) V'(h_{t+1}), actor loss E[α log π − Q], temperature loss on log α) run unchanged on
the real steps only: every [B,T,...] tensor of the batch and of the forward pass is indexed with
the loss mask [B,T] (RLlib's ``AddTimeDimToBatchAndZeroPad`` sets it; burn-in steps of replayed
windows are left out too, ``REPLAY_MASK``), giving [N,...] with N the
number of real steps, so each mean is over real steps and padded steps change no loss.

Optimizers (the three of RLlib's SAC): ``qf`` over the critic trunk and both Q heads (loss: the sum
of the two heads' losses, since they share the trunk), ``policy`` over the actor trunk and head,
``alpha`` over log α. A fixed temperature (``algo.sac.alpha``) is log α with learning rate 0.
Three additions to RLlib's learner: log α is saved in the learner state (checkpoints), and its
gradient is averaged over several learners, as DDP does for the module's; the θ generators of the
module's trunks (SHM with random θ draws fresh rows on every training forward pass) are saved in
the learner state too (``THETA_GENERATORS``), so a restored run continues their streams.

SAC-Discrete's automatic target entropy: RLlib's ``"auto"`` is −dim(A), i.e. −1 for every
``Discrete`` space, which drives α to 0; here ``"auto"`` is 0.5 · ln|A| for discrete actions (half the
uniform policy's entropy; a project choice, documented in docs/off-policy.md) and −dim(A) for
continuous ones, as RLlib.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.algorithms.sac.sac_learner import QF_LOSS_KEY, QF_TWIN_LOSS_KEY
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core.columns import Columns

from rllib_shm.rllib.sac_replay import REPLAY_MASK

LOG_ALPHA = "log_alpha"  # learner state key: {module id: log α}
THETA_GENERATORS = "theta_generators"  # learner state key: {module id: {trunk name: generator state bytes}}
DISCRETE_TARGET_ENTROPY_SHARE = 0.5  # "auto" target entropy of SAC-Discrete: this share of ln|A|


def real_steps(values: dict[str, Any], mask: torch.Tensor) -> dict[str, Any]:
    """Every tensor of ``values`` whose leading dims are the mask's [B,T], indexed to [N,...]."""
    shape = tuple(mask.shape)
    return {key: value[mask] if isinstance(value, torch.Tensor) and tuple(value.shape[:2]) == shape else value
            for key, value in values.items()}


class MemorySACLearner(SACTorchLearner):
    """SAC's torch learner on padded whole episodes (see the module docstring)."""

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        module = self._module[module_id]
        groups = {
            "qf": (self.get_parameters(module.qf_encoder) + self.get_parameters(module.qf)
                   + self.get_parameters(module.qf_twin), config.critic_lr),
            "policy": (self.get_parameters(module.trunk) + self.get_parameters(module.pi_head), config.actor_lr),
            "alpha": ([self.curr_log_alpha[module_id]], config.alpha_lr),
        }
        for name, (params, lr) in groups.items():
            self.register_optimizer(module_id=module_id, optimizer_name=name,
                                    optimizer=torch.optim.Adam(params, eps=1e-7), params=params,
                                    lr_or_lr_schedule=lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        mask = batch.get(Columns.LOSS_MASK)
        if REPLAY_MASK in batch:  # burn-in steps of replayed windows: no loss
            learned = batch[REPLAY_MASK] > 0
            mask = learned if mask is None else mask.bool() & learned
        batch = dict(batch)
        reference = batch[Columns.REWARDS]
        for column in ("n_step", "weights"):  # RLlib's transition sampler adds them; whole episodes: 1-step, unweighted
            if column not in batch:
                batch[column] = torch.ones_like(reference, dtype=torch.float32)
        if mask is not None:
            mask = mask.bool()
            batch, fwd_out = real_steps(batch, mask), real_steps(fwd_out, mask)
        total = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        twin = self._temp_losses.pop((module_id, QF_TWIN_LOSS_KEY), None)
        if twin is not None:  # one critic trunk under both heads: one optimizer, one summed loss
            self._temp_losses[(module_id, QF_LOSS_KEY)] = self._temp_losses[(module_id, QF_LOSS_KEY)] + twin
        return total

    def compute_gradients(self, loss_per_module, **kwargs):
        """RLlib's, plus the mean of log α's gradient over the learners: log α lives outside the
        module, so DDP does not average it, and each learner's α would drift from the others'."""
        grads = super().compute_gradients(loss_per_module, **kwargs)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world = torch.distributed.get_world_size()
            for log_alpha in self.curr_log_alpha.values():
                if log_alpha.grad is not None and world > 1:
                    torch.distributed.all_reduce(log_alpha.grad)
                    log_alpha.grad /= world
        return grads

    # log α in checkpoints: RLlib's SAC learner keeps it outside the module and its state (a restored
    # run would restart from initial_alpha with the optimizer moments of the old α)
    def get_state(self, components=None, *, not_components=None, **kwargs):
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[LOG_ALPHA] = {mid: float(value.detach().cpu()[0]) for mid, value in self.curr_log_alpha.items()}
        if self._check_component(THETA_GENERATORS, components, not_components):  # not in weight syncs
            generators = {mid: {name: value.numpy().tobytes()
                                for name, value in self.module[mid].unwrapped().training_random_states().items()}
                          for mid in self.module.keys()}
            generators = {mid: value for mid, value in generators.items() if value}
            if generators:
                state[THETA_GENERATORS] = generators
        return state

    def set_state(self, state) -> None:
        super().set_state(state)
        for module_id, value in state.get(LOG_ALPHA, {}).items():
            with torch.no_grad():
                self.curr_log_alpha[module_id].fill_(value)
        for module_id, states in state.get(THETA_GENERATORS, {}).items():
            self.module[module_id].unwrapped().set_training_random_states(
                {name: torch.frombuffer(bytearray(raw), dtype=torch.uint8) for name, raw in states.items()})

    def _get_target_entropy(self, module_id):
        target = self.config.get_config_for_module(module_id).target_entropy
        space = self._module_spec.module_specs[module_id].action_space if hasattr(
            self._module_spec, "module_specs") else self._module_spec.action_space
        if (target is None or target == "auto") and isinstance(space, gym.spaces.Discrete):
            return DISCRETE_TARGET_ENTROPY_SHARE * math.log(space.n)
        return super()._get_target_entropy(module_id)
