"""``MemoryEpisodeReplay`` on hand-made episodes: whole episodes, burn-in windows, no stored states."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from rllib_shm.rllib.connectors import STORE, EpisodeStates
from rllib_shm.rllib.sac_replay import REPLAY_MASK, MemoryEpisodeReplay, bytes_per_step


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


def test_chunk_windows_must_fit_the_padded_length():
    with pytest.raises(ValueError, match=r"burn_in 4 \+ chunk_length 8.*max_seq_len \(10\)"):
        MemoryEpisodeReplay(1000, max_len=10, replay="chunks", chunk_length=8, burn_in=4)
