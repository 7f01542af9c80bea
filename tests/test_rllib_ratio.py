"""θ under distribution: PPO's probability ratio is 1 on the first minibatch when θ draws are replayed
(SHM.md §3), every env runner draws its own stream, and checkpoints continue the streams."""

from pathlib import Path

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
from rllib_shm.rllib.theta_streams import ThetaStreams, stream_seed

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
    # remote env runners unpickle the probe classes of this file: put it on their import path
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    yield
    ray.shutdown()


def ppo_config(module_class, env, shared_trunk=True, config_class=MemoryPPOConfig, num_env_runners=0):
    model = ModuleConfig(memory=MemoryConfig(kind="shm", mem_size=16, seed=1), max_seq_len=20,
                         memory_output=32, encoder_hiddens=(32,), head_hiddens=(32,), shared_trunk=shared_trunk)
    return (
        config_class()
        .environment(resolve_env(env))
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=4 if num_env_runners == 0 else 2)
        .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2, lr=1e-3)
        .rl_module(rl_module_spec=RLModuleSpec(module_class=module_class), model_config=model.to_model_config())
        .debugging(seed=0)
    )


def first_minibatch_ratio(module_class, env, shared_trunk=True, config_class=MemoryPPOConfig):
    RATIOS.clear()
    algo = ppo_config(module_class, env, shared_trunk, config_class).build_algo()
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


# -- one θ stream per env runner, continued from checkpoints ----------------------------------------
ENV = "rllib_shm/popgym-RepeatPreviousEasy-v0"


def runner_streams(algo) -> dict[int, bytes]:
    """worker index → the generator state of its module's θ stream (remote runners, else the local one)."""
    def stream(runner):
        return runner.worker_index, b"".join(s.numpy().tobytes() for s in runner.module.random_states().values())

    remote = algo.env_runner_group.num_remote_env_runners() > 0
    return dict(algo.env_runner_group.foreach_env_runner(stream, local_env_runner=not remote))


def seeded_state(index: int) -> bytes:
    """The state a fresh runner's stream starts from: stream_seed(run seed 0, memory seed 1, index)."""
    return torch.Generator().manual_seed(stream_seed(0, 1, index)).get_state().numpy().tobytes()


@pytest.mark.slow
def test_remote_env_runners_draw_their_own_streams_and_keep_the_ratio_at_one(ray_session, tmp_path):
    RATIOS.clear()
    config = ppo_config(RatioProbe, ENV, num_env_runners=2)
    algo = config.build_algo()
    try:
        fresh = runner_streams(algo)
        assert sorted(fresh) == [1, 2] and fresh[1] != fresh[2]
        assert fresh == {1: seeded_state(1), 2: seeded_state(2)}
        algo.train()
        assert RATIOS["replay"][0] < 1e-5, RATIOS["replay"][:3]  # replay holds with remote sampling too
        trained = runner_streams(algo)
        assert trained[1] != fresh[1] and trained[2] != fresh[2] and trained[1] != trained[2]
        algo.save_to_path(str(tmp_path / "algo"))
        saved = runner_streams(algo)
    finally:
        algo.stop()
    restored = config.build_algo()
    try:
        assert runner_streams(restored) == fresh  # a new algorithm starts the streams over ...
        restored.restore_from_path(str(tmp_path / "algo"))
        assert runner_streams(restored) == saved  # ... a restored one continues them
        restored.train()
        assert runner_streams(restored) != saved
    finally:
        restored.stop()


def test_the_local_env_runner_stream_is_checkpointed(ray_session, tmp_path):
    config = ppo_config(MemoryRLModule, ENV)
    algo = config.build_algo()
    try:
        assert runner_streams(algo) == {0: seeded_state(0)}
        algo.train()
        saved = runner_streams(algo)
        assert saved != {0: seeded_state(0)}
        algo.save_to_path(str(tmp_path / "algo"))
    finally:
        algo.stop()
    restored = config.build_algo()
    try:
        restored.restore_from_path(str(tmp_path / "algo"))
        assert runner_streams(restored) == saved
    finally:
        restored.stop()


def test_stream_state_merge_prefers_the_most_advanced_entry():
    piece = ThetaStreams()
    old = {"calls": 3, "states": {"": b"old"}}
    new = {"calls": 5, "states": {"": b"new"}}
    fresh = {"calls": 0, "states": {"": b"fresh"}}
    merged = piece.merge_states([{"streams": {"1": new, "2": old}, "own": "1"},
                                 {"streams": {"1": old, "2": fresh}, "own": "2"}])
    assert merged["streams"] == {"1": new, "2": old}
    assert piece.merge_states([]) == {} and piece.get_state() == {}


# -- two learners (torch DDP over gloo on CPU) ---------------------------------------------------------
@pytest.mark.slow
def test_two_learners_keep_identical_weights_and_replay_theta(ray_session):
    config = ppo_config(RatioProbe, ENV).learners(num_learners=2)
    algo = config.build_algo()
    try:
        algo.train()
        group = algo.learner_group

        def ratios(learner):
            import test_rllib_ratio  # the probe's module in the learner process

            return test_rllib_ratio.RATIOS["replay"]

        def weights(learner):
            module = learner.module["default_policy"]
            return {name: tensor.detach().cpu().numpy() for name, tensor in module.state_dict().items()}

        per_learner = [result.get() for result in group.foreach_learner(ratios).result_or_errors]
        assert len(per_learner) == 2 and all(r[0] < 1e-5 for r in per_learner), [r[:3] for r in per_learner]
        first, second = (result.get() for result in group.foreach_learner(weights).result_or_errors)
        assert first.keys() == second.keys()
        assert all(np.array_equal(first[name], second[name]) for name in first)
        assert any(max(r[1:]) > 1e-4 for r in per_learner)  # the learners did update
    finally:
        algo.stop()
