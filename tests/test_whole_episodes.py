"""Whole-episode BPTT (``algo.whole_episodes``): each train-batch sequence is one whole episode from
t = 0 and the initial state, gradients reach the episode's first step from its last, the memory
estimate counts padded whole sequences, and unbounded or too-long episodes are refused."""

import math

import pytest
import ray
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.episodes import resolve_whole_episodes
from rllib_shm.config.ppo import build_ppo_config
from rllib_shm.rllib.module import STEP, MemoryRLModule
from rllib_shm.runs.preflight import _meta_module, memory_estimate, preflight

BATCHES: list[dict] = []


class BatchProbe(MemoryRLModule):
    """Keeps a detached copy of every train batch the learner forwards."""

    def _forward_train(self, batch, **kwargs):
        BATCHES.append({Columns.OBS: batch[Columns.OBS].detach().clone(),
                        Columns.STATE_IN: {k: v.detach().clone() for k, v in batch[Columns.STATE_IN].items()},
                        Columns.LOSS_MASK: batch[Columns.LOSS_MASK].detach().clone()})
        return super()._forward_train(batch, **kwargs)


def config(whole: bool, max_seq_len: int = 4, env: str = "rllib_shm/CueRecall-D5-v0", **algo) -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "env": {"id": env},
        "module": {"memory": {"kind": "gru", "mem_size": 16}, "encoder_hiddens": [16], "memory_output": 16,
                   "head_hiddens": [16], "max_seq_len": max_seq_len},
        "algo": {"whole_episodes": whole, "train_batch_size": 64, "minibatch_size": 32, "num_epochs": 1,
                 "num_envs_per_env_runner": 4, **algo},
    })


@pytest.mark.parametrize(("env", "bound"), [("rllib_shm/CueRecall-D5-v0", 7),
                                             ("rllib_shm/popgym-RepeatFirstMedium-v0", 415),
                                             ("rllib_shm/popgym-ConcentrationEasy-v0", 104)])
def test_max_seq_len_becomes_the_longest_episode_plus_the_bootstrap_step(env, bound):
    resolved = resolve_whole_episodes(config(True, env=env, train_batch_size=1024, minibatch_size=1024))
    assert resolved.module.max_seq_len == bound + 1
    assert resolve_whole_episodes(resolved) == resolved  # idempotent
    truncated = config(False, env=env)
    assert resolve_whole_episodes(truncated) is truncated  # the setting is off: nothing changes


def test_an_env_config_that_lengthens_episodes_is_followed():
    resolved = resolve_whole_episodes(config(True).__class__.from_dict(
        {**config(True).to_dict(), "env": {"id": "rllib_shm/CueRecall-D5-v0", "config": {"delay": 20}}}))
    assert resolved.module.max_seq_len == 23


def test_unbounded_episodes_and_short_minibatches_are_refused():
    with pytest.raises(ValueError, match="declares no bound"):  # tests/success_env.py declares no length
        resolve_whole_episodes(config(True, env="success_env:LastActionSuccess"))
    with pytest.raises(ValueError, match=r"minibatch_size \(32\).*≥ 416"):
        preflight(config(True, env="rllib_shm/popgym-RepeatFirstMedium-v0"))


def test_the_memory_estimate_counts_whole_padded_sequences_and_the_overshoot():
    base = config(False, env="rllib_shm/CueRecall-D30-v0", train_batch_size=256, minibatch_size=40)
    whole = resolve_whole_episodes(config(True, env="rllib_shm/CueRecall-D30-v0", train_batch_size=256,
                                          minibatch_size=40))
    module = _meta_module(whole, __import__("rllib_shm.rllib", fromlist=["make_env"]).make_env(whole.env.id))
    plain, full = memory_estimate(base, module), memory_estimate(whole, module)
    state = 1 + 16  # step + GRU h
    assert plain["learner activations per minibatch"] == 4 * state * 40
    assert full["learner activations per minibatch"] == 4 * state * math.ceil(40 / 33) * 33  # two sequences
    assert full["states stored with a train batch"] == 4 * state * (256 + 4 * 33)  # + one episode per env


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def train_batches(experiment: ExperimentConfig) -> list[dict]:
    BATCHES.clear()
    ppo = build_ppo_config(experiment).rl_module(rl_module_spec=RLModuleSpec(module_class=BatchProbe))
    algo = ppo.build_algo()
    try:
        algo.train()
        module = algo.learner_group._learner.module["default_policy"]
        return list(BATCHES), module
    finally:
        algo.stop()


def test_every_sequence_is_a_whole_episode_from_t0_and_gradients_reach_its_start(ray_session):
    batches, module = train_batches(config(True))
    length = 7  # CueRecall-D5: delay + 2 steps
    for batch in batches:
        state_in, mask = batch[Columns.STATE_IN], batch[Columns.LOSS_MASK]
        assert mask.shape[1] == length + 1  # max_seq_len = L + 1
        assert (state_in[STEP] == 0).all()  # every sequence starts at the episode's first step …
        assert (state_in["h"] == 0).all()  # … from the initial state
        assert (mask.sum(1) == length).all()  # the whole episode (the bootstrap step masked out)
    # no gradient cut: the last step's policy output depends on the first step's observation
    batch = batches[0]
    obs = batch[Columns.OBS].clone().requires_grad_(True)
    out = MemoryRLModule._forward_train(module, {Columns.OBS: obs, Columns.STATE_IN: batch[Columns.STATE_IN]})
    out[Columns.ACTION_DIST_INPUTS][:, length - 1].sum().backward()
    assert (obs.grad[:, 0].abs().sum(-1) > 0).all()


def test_control_truncated_bptt_starts_sequences_inside_episodes(ray_session):
    """The probe sees a cut where there is one: 4-step chunks of 7-step episodes with rollouts cut."""
    batches, _ = train_batches(config(False, max_seq_len=4))
    starts = torch.cat([batch[Columns.STATE_IN][STEP].flatten() for batch in batches])
    assert (starts > 0).any() and (starts == 0).any()


def first_observations(experiment: ExperimentConfig, runner_cls=None, calls: int = 4) -> list[list[tuple]]:
    """Per ``sample()`` call of the trial's own env runner, the first observation of each episode."""
    ppo = build_ppo_config(experiment)
    if runner_cls is not None:
        ppo.env_runners(env_runner_cls=runner_cls)
    algo = ppo.build_algo()
    try:
        return [[tuple(episode.get_observations(0).tolist()) for episode in algo.env_runner.sample()]
                for _ in range(calls)]
    finally:
        algo.stop()


def test_each_sample_call_plays_new_episodes(ray_session):
    """RLlib 2.60 reseeds every env at each complete-episodes ``sample()``, so each call replays the
    same episodes (control: its own env runner); the project's env runner seeds an env once."""
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    experiment = config(True, num_envs_per_env_runner=8)
    replayed = first_observations(experiment, SingleAgentEnvRunner)
    assert all(cues == replayed[0] for cues in replayed)  # the RLlib behaviour this guards against
    fresh = first_observations(experiment)
    assert fresh[0] == replayed[0]  # the first call is seeded as before (reproducible runs)
    assert len({tuple(cues) for cues in fresh}) == len(fresh)  # every later call plays new cues


def test_rllibs_lstm_arm_plays_new_episodes_too(ray_session):
    """``module.rllib_lstm`` runs RLlib's plain PPOConfig; with RLlib's env runner a whole-episode run
    trained on the same episodes every iteration (the memory-length benchmark's RLlib-LSTM arm scored
    exactly 75 % on CueRecall, a constant answer to 8 fixed cues)."""
    experiment = config(True, num_envs_per_env_runner=8)
    experiment = ExperimentConfig.from_dict({**experiment.to_dict(), "module": {
        **experiment.to_dict()["module"], "rllib_lstm": True, "memory": {"kind": "lstm", "mem_size": 16},
        "head_hiddens": []}})
    fresh = first_observations(experiment)
    assert len({tuple(cues) for cues in fresh}) == len(fresh)
