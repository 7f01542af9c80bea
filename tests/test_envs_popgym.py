"""POPGym: the wrapper sets, the info fix, and perfect-memory policies scoring +1."""

from __future__ import annotations

import numpy as np
import pytest

import envs


def card(observation: np.ndarray) -> int:
    """The dealt suit: the first 4 entries of the flattened observation are its one-hot."""
    assert observation[:4].sum() == 1.0
    return int(np.argmax(observation[:4]))


def test_popgym_wrapper_set_adds_previous_action_and_first_step_flag():
    env = envs.make("rllib_shm/popgym-RepeatFirstEasy-v0")
    assert env.observation_space.shape == (10,) and env.observation_space.dtype == np.float32
    observation, _ = env.reset(seed=0)
    # [suit one-hot (4) | previous action one-hot (4, null action 0 at reset) | is_t0 one-hot (2)]
    np.testing.assert_array_equal(observation[4:], [1, 0, 0, 0, 0, 1])
    observation = env.step(2)[0]
    np.testing.assert_array_equal(observation[4:], [0, 0, 1, 0, 1, 0])


@pytest.mark.parametrize(("wrappers", "shape", "dtype"), [("raw", (4,), np.float32), ("none", (), np.int64)])
def test_raw_and_none_wrapper_sets(wrappers, shape, dtype):
    env = envs.make("rllib_shm/popgym-RepeatPreviousEasy-v0", wrappers=wrappers)
    observation, _ = env.reset(seed=0)
    assert env.observation_space.shape == shape
    assert np.asarray(observation).dtype == dtype and env.observation_space.contains(observation)
    if wrappers == "raw":  # one-hot suit only, as RLlib's old preprocessor fed the SHM script
        assert observation.sum() == 1.0


def test_count_recall_info_no_longer_leaks_the_hidden_counts():
    env = envs.make("rllib_shm/popgym-CountRecallEasy-v0")
    _, info = env.reset(seed=0)
    infos = [info] + [env.step(0)[4] for _ in range(5)]
    assert all("counts" not in i for i in infos)
    assert len({id(i) for i in infos}) == len(infos)  # a fresh dict every step


@pytest.mark.parametrize("level", ["Easy", "Medium"])
def test_perfect_memory_scores_one_on_repeat_first(level):
    env = envs.make(f"rllib_shm/popgym-RepeatFirst{level}-v0")
    for seed in range(3):
        observation, _ = env.reset(seed=seed)
        first, total, done = card(observation), 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(first)
            total, done = total + reward, terminated or truncated
        assert total == pytest.approx(1.0)


@pytest.mark.parametrize(("level", "k"), [("Easy", 4), ("Medium", 32), ("Hard", 64)])
def test_perfect_memory_scores_one_on_repeat_previous(level, k):
    env = envs.make(f"rllib_shm/popgym-RepeatPrevious{level}-v0")
    observation, _ = env.reset(seed=k)
    seen, total, done = [card(observation)], 0.0, False
    while not done:
        answer = seen[-k] if len(seen) >= k else 0  # the suit dealt k - 1 cards before the latest
        observation, reward, terminated, truncated, _ = env.step(answer)
        seen.append(card(observation))
        total, done = total + reward, terminated or truncated
    assert total == pytest.approx(1.0)


def test_memoryless_policy_stays_near_minus_half_on_repeat_first():
    env = envs.make("rllib_shm/popgym-RepeatFirstEasy-v0")
    returns = []
    for seed in range(40):
        observation, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:  # answer the current card: the best a memoryless policy can do
            observation, reward, terminated, truncated, _ = env.step(card(observation))
            total, done = total + reward, terminated or truncated
        returns.append(total)
    assert -0.75 < np.mean(returns) < -0.25
