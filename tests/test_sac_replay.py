"""``MemoryEpisodeReplay`` on hand-made episodes: whole episodes, burn-in windows, no stored states."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_shm.rllib.connectors import START_STATE, STORE, EpisodeStates
from rllib_shm.rllib.sac_replay import REPLAY_MASK, START_STATES, MemoryEpisodeReplay, bytes_per_step


def episode(length: int, done: bool = True, state_bytes: int = 0) -> SingleAgentEpisode:
    space = gym.spaces.Box(0, 1, (3,), np.float32)
    item = SingleAgentEpisode(observations=[np.full(3, t, np.float32) for t in range(length + 1)],
                              actions=list(range(length)), rewards=[0.0] * length, terminated=done,
                              observation_space=space, action_space=gym.spaces.Discrete(length + 1),
                              len_lookback_buffer=0)
    if state_bytes:
        store = EpisodeStates(0)
        store.last = {"memory": np.zeros(state_bytes // 4, np.float32)}
        item.custom_data[STORE] = store
    return item


def test_whole_episodes_from_t0_with_sac_columns_and_no_states():
    buffer = MemoryEpisodeReplay(1000, max_len=8, seed=0)
    episodes = [episode(5, state_bytes=65536), episode(7, state_bytes=65536), episode(3, done=False)]
    buffer.add(episodes)
    assert all(STORE in e.custom_data for e in episodes[:2])  # the caller's episodes keep their acting states
    sampled = buffer.sample(num_items=20, n_step=1, batch_length_T=8, lookback=1)
    assert len(sampled) == 20 and {len(e) for e in sampled} == {5, 7}  # finished episodes only, whole
    for item in sampled:
        assert item.t_started == 0
        assert float(item.get_observations(0)[0]) == 0.0  # from the first step
        assert np.all(item.get_extra_model_outputs(REPLAY_MASK) == 1.0)
        assert np.all(item.get_extra_model_outputs("n_step") == 1)
    per_step = bytes_per_step(buffer)
    assert 0 < per_step < 100, per_step  # 64 KiB of state per episode was offered and dropped


def test_an_episode_longer_than_max_seq_len_is_refused_with_both_numbers():
    buffer = MemoryEpisodeReplay(1000, max_len=4, seed=0)
    buffer.add([episode(6)])
    with pytest.raises(ValueError, match=r"episode of 6 steps is longer than module.max_seq_len \(4\)"):
        buffer.sample(num_items=1)


def test_chunks_replay_windows_after_a_burn_in_without_loss():
    buffer = MemoryEpisodeReplay(1000, max_len=6, replay="chunks", chunk_length=4, burn_in=2, seed=0)
    buffer.add([episode(20)])
    for item in buffer.sample(num_items=50):
        mask = item.get_extra_model_outputs(REPLAY_MASK)
        burn = int((mask == 0).sum())
        assert len(item) <= 6 and burn <= 2 and np.all(mask[burn:] == 1.0) and np.all(mask[:burn] == 0.0)
        assert burn == min(2, item.t_started + burn) and 1 <= len(item) - burn <= 4


def test_stored_windows_learn_one_aligned_chunk_after_whole_chunks_of_burn_in():
    """chunk_length 4, burn_in 3 → 4 steps of burn-in from the state stored at an aligned step."""
    item = episode(10)
    store = EpisodeStates(0)
    store.starts = {t: {"memory": np.full(2, t, np.float32)} for t in (4, 8, 10)}
    item.custom_data[STORE] = store
    buffer = MemoryEpisodeReplay(1000, max_len=8, replay="chunks", chunk_length=4, burn_in=3, start_states="stored",
                                 seed=0)
    buffer.add([item])
    assert sorted(buffer.episodes[0].custom_data[START_STATES]) == [4, 8]  # the state after the last step: dropped
    seen = set()
    for window in buffer.sample(num_items=40):
        begin = int(window.get_observations(0)[0])  # observation t is t
        mask = window.get_extra_model_outputs(REPLAY_MASK)
        learned = begin + int((mask == 0).sum())
        seen.add(learned)
        assert begin % 4 == 0 and learned == begin + (4 if learned else 0) and len(window) - (learned - begin) <= 4
        state = window.custom_data[START_STATE]
        assert (state is None) if begin == 0 else float(state["memory"][0]) == begin
    assert seen == {0, 4, 8}
    with pytest.raises(ValueError, match=r"burn_in 8 \+ chunk_length 4, burn-in rounded up to whole chunks"):
        MemoryEpisodeReplay(1000, max_len=10, replay="chunks", chunk_length=4, burn_in=5, start_states="stored")


def test_chunk_windows_must_fit_the_padded_length():
    with pytest.raises(ValueError, match=r"burn_in 4 \+ chunk_length 8.*max_seq_len \(10\)"):
        MemoryEpisodeReplay(1000, max_len=10, replay="chunks", chunk_length=8, burn_in=4)


def replayed_and_acting_logits(mode: str):
    """A local env runner acts on CueRecall-D30 (32 steps) with SHM H = 8 in two sampling rounds (so
    episodes span fragments), the buffer stores them (``chunk_start_state`` = ``mode``: chunks of 8
    steps, burn-in 8), and the learner replays 24 windows through its own connector pipeline with
    θ replay ``acting``. Returns (replayed actor logits, the acting ones, learned-step mask, buffer)."""
    import torch
    import tree
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.core.columns import Columns

    from rllib_shm.config import load_config
    from rllib_shm.config.sac import build_sac_config
    from rllib_shm.rllib import make_env
    from rllib_shm.rllib.theta_streams import MemoryEnvRunner

    config = load_config(None, [
        "env.id=rllib_shm/CueRecall-D30-v0", "algo.name=sac", "module.memory.kind=shm", "module.memory.mem_size=8",
        "module.encoder_hiddens=[16]", "module.memory_output=16", "module.head_hiddens=[16]", "module.max_seq_len=16",
        "algo.num_envs_per_env_runner=2", "algo.sac.replay=chunks", f"algo.sac.chunk_start_state={mode}",
        "algo.sac.chunk_length=8", "algo.sac.burn_in=8", "algo.sac.theta_replay=acting"])
    algo_config = build_sac_config(config)
    learner = algo_config.build_learner(env=make_env(config.env.id))
    module = learner.module[DEFAULT_MODULE_ID]
    runner = MemoryEnvRunner(config=algo_config)
    runner.module.set_state(module.get_state(inference_only=True))  # act with the learner's weights
    buffer = MemoryEpisodeReplay(10_000, max_len=16, replay="chunks", chunk_length=8, burn_in=8, start_states=mode,
                                 seed=0)
    for _ in range(2):
        buffer.add(runner.sample(num_timesteps=50, random_actions=False))
    runner.stop()
    windows = buffer.sample(num_items=24)
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=windows, shared_data={},
                                       metrics=learner.metrics)[DEFAULT_MODULE_ID]
    batch = tree.map_structure(lambda value: torch.as_tensor(np.asarray(value)), batch)
    with torch.no_grad():
        replayed = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
    return replayed, batch[Columns.ACTION_DIST_INPUTS], batch[Columns.LOSS_MASK].bool(), buffer


def test_stored_start_states_replay_the_actors_acting_outputs_exactly():
    """Windows started from the stored acting state (actor's and critic's, one per 8 steps) give the
    actor's acting outputs on every replayed step; from the zero state they do not."""
    replayed, acting, mask, buffer = replayed_and_acting_logits("stored")
    assert int(mask.sum()) > 100
    assert float((replayed - acting)[mask].abs().max()) < 1e-5
    for record in buffer.episodes:  # one state per chunk start after step 0, none past the end
        starts = record.custom_data[START_STATES]
        ongoing = 0 if record.is_done else 1  # an ongoing episode's next chunk start is kept too
        assert sorted(starts) == list(range(8, len(record) + ongoing, 8)), (sorted(starts), len(record))
        assert all(set(state) == {"pi_step", "pi_memory", "qf_step", "qf_memory"} for state in starts.values())
    replayed, acting, mask, _ = replayed_and_acting_logits("zero")
    assert float((replayed - acting)[mask].abs().max()) > 1e-3
