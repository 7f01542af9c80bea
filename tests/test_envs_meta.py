"""Wind and Point Robot: task table, splits, task selection, action scaling, oracles."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.point_robot import PointRobot
from envs.wind import Wind


@pytest.mark.parametrize(("split", "num_train"), [("50_150", 50), ("10_190", 10)])
def test_task_split_partitions_the_200_tasks(split, num_train):
    train, evaluation = envs.task_split(split)
    assert train == tuple(range(num_train)) and evaluation == tuple(range(num_train, 200))


@pytest.mark.parametrize("split", ["50_100", "0_200", "fifty_150", "50/150"])
def test_a_split_that_does_not_add_up_is_refused(split):
    with pytest.raises(ValueError, match=split.replace("/", ".")):
        envs.task_split(split)


def test_tasks_come_from_a_fixed_seed_not_the_episode_seed():
    a, b = Wind(), Wind()
    a.reset(seed=1)
    b.reset(seed=2)
    np.testing.assert_array_equal(a.tasks, b.tasks)
    assert a.tasks.shape == (200, 2) and np.all(np.abs(a.tasks) <= 0.1)
    goals = PointRobot().tasks
    assert np.allclose(np.linalg.norm(goals, axis=1), 1.0) and np.all(goals[:, 1] >= 0)
    assert not np.array_equal(Wind(task_seed=0).tasks, a.tasks)


def test_task_pool_and_task_option():
    env = envs.make("rllib_shm/Wind-v0", split="50_150", subset="eval")
    tasks = {env.reset(seed=s)[1]["task"] for s in range(40)}
    assert min(tasks) >= 50 and len(tasks) > 20
    train = envs.make("rllib_shm/PointRobot-v0", split="10_190")
    assert {train.reset(seed=s)[1]["task"] for s in range(40)} <= set(range(10))
    assert env.reset(options={"task": 7})[1]["task"] == 7
    with pytest.raises(ValueError, match="task"):
        env.reset(options={"task": 200})


def test_wind_action_is_clipped_rescaled_and_fed_back():
    env = Wind()
    env.reset(seed=0, options={"task": 3})
    observation = env.step(np.array([0.5, 4.0], dtype=np.float32))[0]
    expected = np.array([0.05, 0.1]) + env.wind
    np.testing.assert_allclose(observation[:2], expected, rtol=1e-6)
    np.testing.assert_allclose(observation[2:], [0.5, 1.0])  # previous action, clipped


def test_oracle_that_knows_the_wind_reaches_the_goal():
    env = Wind()
    reached = []
    for task in range(env.num_tasks):
        observation, _ = env.reset(seed=task, options={"task": task})
        total, done, info = 0.0, False, {}
        while not done:
            move = np.clip(Wind.GOAL - observation[:2] - env.wind, -0.1, 0.1)
            observation, reward, terminated, truncated, info = env.step(move / 0.1)
            total, done = total + reward, terminated or truncated
        # reachable when the upward speed 0.1 + w_y covers the unit distance in time
        if (0.1 + env.wind[1]) * (env.horizon - 1) >= 1.0:
            assert info["success"] and total >= 1.0, task
        reached.append(info["success"])
    assert np.mean(reached) >= 0.9


def test_point_robot_chains_two_episodes_with_done_flag_and_previous_reward():
    env = PointRobot()
    observation, info = env.reset(seed=0, options={"task": 5})
    assert observation[2] == 0.0 and observation[3] == 0.0 and info["inner_episode"] == 0
    flags, rewards, inner_returns = [], [], [0.0, 0.0]
    for t in range(1, 201):
        move = np.clip(env.goal - observation[:2], -0.1, 0.1)
        observation, reward, terminated, truncated, info = env.step(move / 0.1)
        assert not terminated and truncated == (t == 200)
        assert observation[3] == reward  # the previous reward, as SHM fed it
        flags.append(observation[2])
        rewards.append(reward)
        inner_returns[(t - 1) // 100] += reward
        if t == 100:  # already the start state of the second inner episode
            assert info["inner_episode"] == 1
            assert -1.5 <= observation[0] <= 1.5 and -0.5 <= observation[1] <= 1.5
    assert [t + 1 for t, flag in enumerate(flags) if flag == 1.0] == [100, 200]
    assert min(inner_returns) > 50 and info["success"]  # the oracle sits on the goal in both


def test_navigation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="subset"):
        Wind(split="50_150", subset="validation")
    with pytest.raises(ValueError, match="episodes_per_task"):
        PointRobot(episodes_per_task=0)
    env = Wind()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan, 0.0], dtype=np.float32))


def test_a_fixed_policys_level_is_its_mean_return_and_success_over_the_task_pool():
    """``fixed_policy_level`` (the results directories' reference levels): each task of the pool,
    a fresh policy per episode, seeded episodes, the same numbers twice."""
    from envs.navigation import fixed_policy_level

    def toward_goal(env, obs, rng):  # Point Robot's oracle: walk straight to the hidden goal
        delta = env.goal - obs[:2].astype(np.float64)
        return delta / max(float(np.linalg.norm(delta)), env.max_step)

    made = []

    def make():
        made.append(1)
        return toward_goal

    env = PointRobot(split="10_190", subset="train")
    ret, success = fixed_policy_level(env, make, episodes_per_task=2, seed=3)
    assert len(made) == 2 * len(env.task_pool) == 20
    assert success == 1.0 and 150 < ret <= 200  # both inner episodes reach the goal and stay
    assert fixed_policy_level(env, make, episodes_per_task=2, seed=3) == (ret, success)
    still = fixed_policy_level(Wind(split="10_190", subset="train"), lambda: lambda env, obs, rng: np.zeros(2), 1)
    assert still == (0.0, 0.0)
