"""Cue recall (perfect memory +1, memoryless 0 on average) and the flattened MiniGrid tasks."""

from __future__ import annotations

import numpy as np
import pytest

import envs


def cue_recall_return(env, answer) -> tuple[float, int, dict, list]:
    observation, _ = env.reset()
    cue = int(np.argmax(observation[:-1]))
    observations, total, steps, done, info = [observation], 0.0, 0, False, {}
    while not done:
        observation, reward, terminated, truncated, info = env.step(answer(cue))
        observations.append(observation)
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps, info, observations


@pytest.mark.parametrize("delay", [5, 10, 30, 100, 200, 300, 1000])
def test_perfect_memory_scores_one_on_cue_recall(delay):
    env = envs.make(f"rllib_shm/CueRecall-D{delay}-v0")
    env.reset(seed=0)
    for _ in range(20):
        total, steps, info, observations = cue_recall_return(env, lambda cue: cue)
        assert total == 1.0 and info["success"] and steps == delay + 2
        assert observations[0][:-1].sum() == 1 and observations[0][-1] == 0  # the cue
        assert all(o.sum() == 0 for o in observations[1 : delay + 1])  # blanks
        np.testing.assert_array_equal(observations[delay + 1], [0, 0, 1])  # the query


def test_memoryless_answer_averages_zero_with_two_cues():
    env = envs.make("rllib_shm/CueRecall-D5-v0")
    env.reset(seed=1)
    returns = [cue_recall_return(env, lambda cue: 0)[0] for _ in range(400)]
    assert set(returns) == {-1.0, 1.0}
    assert abs(np.mean(returns)) < 3 * 1 / np.sqrt(400)


def test_cue_recall_number_of_cues():
    env = envs.make("rllib_shm/CueRecall-D5-v0", num_cues=4)
    assert env.observation_space.shape == (5,) and env.action_space.n == 4
    with pytest.raises(ValueError, match="num_cues"):
        envs.make("rllib_shm/CueRecall-D5-v0", num_cues=1)


def test_minigrid_observation_is_the_flattened_symbolic_view_and_success_follows_reward():
    env = envs.make("rllib_shm/MiniGrid-MemoryS7-v0")
    observation, _ = env.reset(seed=0)
    view = env.unwrapped.gen_obs()["image"]  # minigrid's own 7x7x3 view of the same state
    np.testing.assert_array_equal(observation, view.reshape(-1).astype(np.float32))
    assert observation.dtype == np.float32 and observation.shape == (147,)
    env.action_space.seed(0)
    for _ in range(5):
        env.reset()
        done = False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            done = terminated or truncated
        assert info["success"] == (terminated and reward > 0)
