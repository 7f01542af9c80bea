"""PPO's probability ratio is 1 on the first minibatch when θ draws are replayed (SHM.md §3)."""

import numpy as np
import pytest
import ray
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_shm.memory import MemoryConfig
from rllib_shm.rllib import resolve_env
from rllib_shm.rllib.connectors import AddChunkStartStates, MemoryPPOConfig
from rllib_shm.rllib.module import THETA_COLUMN, MemoryRLModule
from rllib_shm.rllib.module_config import ModuleConfig

RATIOS: dict[str, list[float]] = {}


class RatioProbe(MemoryRLModule):
    """Records max |π_new/π_old − 1| over the valid steps of every training forward pass."""

    probe_name = "replay"

    def _forward_train(self, batch, **kwargs):
        out = super()._forward_train(batch, **kwargs)
        dist = self.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
        ratio = torch.exp(dist.logp(batch[Columns.ACTIONS]) - batch[Columns.ACTION_LOGP])
        mask = batch[Columns.LOSS_MASK].bool()
        RATIOS.setdefault(self.probe_name, []).append(float((ratio[mask] - 1).abs().max()))
        return out


class RedrawProbe(RatioProbe):
    """Control: forgets the stored draws, as the reference code did (θ redrawn when learning)."""

    probe_name = "redraw"

    def _forward_train(self, batch, **kwargs):
        batch = {k: v for k, v in batch.items() if k != THETA_COLUMN}
        return super()._forward_train(batch, **kwargs)


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def first_minibatch_ratio(module_class, env, shared_trunk=True, config_class=MemoryPPOConfig):
    RATIOS.clear()
    model = ModuleConfig(memory=MemoryConfig(kind="shm", mem_size=16, seed=1), max_seq_len=20,
                         memory_output=32, encoder_hiddens=(32,), head_hiddens=(32,), shared_trunk=shared_trunk)
    config = (
        config_class()
        .environment(resolve_env(env))
        .env_runners(num_env_runners=0, num_envs_per_env_runner=4)
        .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2, lr=1e-3)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=module_class), model_config=model.to_model_config())
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        pipeline = algo.learner_group._learner._learner_connector
        assert any(isinstance(piece, AddChunkStartStates) for piece in pipeline.connectors) == (
            config_class is MemoryPPOConfig)
        algo.train()
    finally:
        algo.stop()
    return RATIOS[module_class.probe_name]


@pytest.mark.parametrize(("shared_trunk", "config_class"),
                         [(True, MemoryPPOConfig), (False, MemoryPPOConfig), (True, PPOConfig)])
def test_ratio_is_one_before_the_first_update(ray_session, shared_trunk, config_class):
    """With the project's chunk-start state connector and with RLlib's own one."""
    ratios = first_minibatch_ratio(RatioProbe, "rllib_shm/popgym-RepeatPreviousEasy-v0", shared_trunk, config_class)
    assert ratios[0] < 1e-5, ratios[:3]
    assert max(ratios[1:]) > 1e-4  # later minibatches follow updates: the probe can see a change


def test_redrawing_theta_breaks_the_ratio(ray_session):
    ratios = first_minibatch_ratio(RedrawProbe, "rllib_shm/popgym-RepeatPreviousEasy-v0")
    assert ratios[0] > 1e-3, ratios[:3]
    assert np.isfinite(ratios).all()
