"""Recurrent SAC learning, end to end on RLlib (slow): closed-form soft Q, CueRecall-D30 with SHM
and GRU, a continuous memory task, checkpoint restore, two learners, replay bytes per step.

Budgets are CI-sized: a small trunk (encoder 32-32, memory 16, output 32, head 32), fixed α = 0.1
(the paper's SAC-Discrete), 16 whole episodes per update, 0.25 updates per env step.
"""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from rllib_shm.config import load_config
from rllib_shm.config.sac import build_sac_config
from rllib_shm.rllib import make_env
from rllib_shm.rllib.sac_replay import bytes_per_step
from rllib_shm.runs.episodes import run_episodes

pytestmark = pytest.mark.slow

SMALL = ["algo.name=sac", "module.encoder_hiddens=[32, 32]", "module.memory_output=32",
         "module.head_hiddens=[32]", "module.memory.mem_size=16", "algo.num_envs_per_env_runner=8",
         "algo.sac.batch_episodes=16", "algo.sac.alpha=0.1", "algo.sac.env_steps_per_iteration=1000"]


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def learner_module(algo):
    return algo.learner_group._learner.module[DEFAULT_MODULE_ID]


def greedy_success(algo, config, episodes: int = 50) -> float:
    env = make_env(config.env.id, config.env.config)
    try:
        return float(np.mean(run_episodes(learner_module(algo), env, episodes, seed=1000)["successes"]))
    finally:
        env.close()


def train_until_success(config, iterations: int, threshold: float = 0.95):
    """(algo, greedy success, env steps) after the first iteration whose greedy success reaches
    ``threshold``, or after ``iterations``."""
    algo = build_sac_config(config).build_algo()
    success, steps = 0.0, 0
    for _ in range(iterations):
        steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        success = greedy_success(algo, config)
        if success >= threshold:
            break
    return algo, success, steps


def soft_q_cue_recall(delay: int, gamma: float, alpha: float) -> np.ndarray:
    """Soft-optimal Q of CueRecall (two cues) per step t = 0..delay+1 for the (right, wrong) answer:
    at the query ±1; before it every action is ignored, so Q_t = γ V_{t+1} for both, with
    V_query = α ln(e^{1/α} + e^{−1/α}) and V_t = Q_t + α ln 2."""
    q = np.zeros((delay + 2, 2))
    q[-1] = (1.0, -1.0)
    value = alpha * np.logaddexp(1 / alpha, -1 / alpha)
    for t in range(delay, -1, -1):
        q[t] = gamma * value
        value = q[t, 0] + alpha * np.log(2)
    return q


def test_critic_converges_to_the_closed_form_soft_q_and_the_policy_learns_the_cue(ray_session):
    config = load_config(None, [*SMALL, "env.id=rllib_shm/CueRecall-D5-v0", "module.memory.kind=gru",
                                "module.max_seq_len=8", "algo.gamma=0.9", "algo.sac.env_steps_per_iteration=500",
                                "algo.sac.tau=0.05"])  # faster target tracking: the values settle within the budget
    algo, success, _ = train_until_success(config, iterations=12)
    try:
        assert success >= 0.95
        for _ in range(8):  # let the critic settle on the learned policy (6 bootstrapped steps back to t = 0)
            algo.train()
        module = learner_module(algo)
        expected = soft_q_cue_recall(delay=5, gamma=0.9, alpha=0.1)
        for cue in (0, 1):
            obs = torch.zeros(1, 7, 3)
            obs[0, 0, cue], obs[0, 6, 2] = 1.0, 1.0
            with torch.no_grad():
                q = module.compute_q_values({Columns.OBS: obs})[0].numpy()  # [T, A], min of the twins
            right, wrong = q[:, cue], q[:, 1 - cue]
            np.testing.assert_allclose(right, expected[:, 0], atol=0.15)
            np.testing.assert_allclose(wrong[-1], expected[-1, 1], atol=0.15)
            np.testing.assert_allclose(wrong[:-1], expected[:-1, 1], atol=0.15)
    finally:
        algo.stop()


@pytest.mark.parametrize("memory", ["shm", "gru"])
def test_sac_discrete_solves_cue_recall_d30(ray_session, memory):
    config = load_config(None, [*SMALL, "env.id=rllib_shm/CueRecall-D30-v0", f"module.memory.kind={memory}",
                                "module.max_seq_len=32"])
    algo, success, steps = train_until_success(config, iterations=12)
    algo.stop()
    assert success >= 0.95, f"{memory}: greedy success {success:.0%} after {steps} env steps"


def test_sac_learns_a_continuous_task_that_needs_memory(ray_session):
    config = load_config(None, [*SMALL, "env.id=tests.continuous_cue_env:ContinuousCue", "module.memory.kind=gru",
                                "module.max_seq_len=8", "algo.sac.alpha=null", "algo.sac.env_steps_per_iteration=1000"])
    algo, success, steps = train_until_success(config, iterations=10, threshold=0.9)
    algo.stop()
    assert success >= 0.9, f"greedy success {success:.0%} after {steps} env steps (memoryless best: 50 %)"


def next_draws(module) -> dict[str, torch.Tensor]:
    """The next θ rows [4, 8] each of the learner's trunks would draw (advances the generators)."""
    trunks = {"pi": module.trunk, "qf": module.qf_encoder, "target_qf": module.target_qf_encoder}
    return {name: trunk.memory.draw_indices(4, 8) for name, trunk in trunks.items()}


def test_checkpoint_restores_weights_optimizer_alpha_and_theta_streams_then_training_continues(ray_session, tmp_path):
    config = load_config(None, [*SMALL, "env.id=rllib_shm/CueRecall-D5-v0", "module.memory.kind=shm",
                                "module.memory.mem_size=64", "module.max_seq_len=8", "algo.sac.alpha=null",
                                "algo.sac.env_steps_per_iteration=300", "algo.sac.warmup_episodes=4"])
    algo = build_sac_config(config).build_algo()
    for _ in range(2):
        algo.train()
    # the buffer holds no recurrent state: SHM's H×H = 16 KiB per step at H = 64 would dominate it
    per_step = bytes_per_step(algo.local_replay_buffer)
    assert 0 < per_step < 256, per_step
    algo.save_to_path(str(tmp_path / "ckpt"))
    saved_learner = algo.learner_group._learner.get_state()
    saved_streams = algo.env_runner._env_to_module.get_state()
    uninterrupted = next_draws(learner_module(algo))  # the learner's next fresh θ draws, had the run gone on
    algo.stop()

    restored = build_sac_config(config).build_algo()
    restored.restore_from_path(str(tmp_path / "ckpt"))
    learner = restored.learner_group._learner.get_state()
    for key, tensor in saved_learner["rl_module"][DEFAULT_MODULE_ID].items():
        np.testing.assert_array_equal(learner["rl_module"][DEFAULT_MODULE_ID][key], tensor, err_msg=key)
    assert learner["log_alpha"] == saved_learner["log_alpha"] and saved_learner["log_alpha"][DEFAULT_MODULE_ID] != 0.0
    moments = saved_learner["optimizer"]
    assert set(learner["optimizer"]) == set(moments)
    for name, state in moments.items():
        for index, entry in state["state"]["state"].items():
            np.testing.assert_array_equal(learner["optimizer"][name]["state"]["state"][index]["exp_avg"],
                                          entry["exp_avg"], err_msg=name)
    assert restored.env_runner._env_to_module.get_state() == saved_streams and saved_streams
    # the learner's θ generators continue: the restored learner's next draws are the uninterrupted run's,
    # not the memory seed's stream again (which a newly built learner draws)
    assert learner["theta_generators"] == saved_learner["theta_generators"]
    restarted = next_draws(learner_module(build_sac_config(config).build_algo()))
    continued = next_draws(learner_module(restored))
    for name, rows in uninterrupted.items():
        assert torch.equal(continued[name], rows), name
        assert not torch.equal(restarted[name], rows), name
    result = restored.train()  # the buffer was not kept: it warms up again, then learns
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] > 600
    restored.stop()


def test_two_cpu_learners_end_an_iteration_with_identical_weights(ray_session):
    config = load_config(None, [*SMALL, "env.id=rllib_shm/CueRecall-D5-v0", "module.memory.kind=shm",
                                "module.max_seq_len=8", "algo.num_learners=2", "algo.sac.alpha=null",
                                "algo.sac.env_steps_per_iteration=200", "algo.sac.warmup_episodes=4",
                                "algo.sac.batch_episodes=4"])
    algo = build_sac_config(config).build_algo()
    try:
        algo.train()
        algo.train()
        states = [result.get() for result in algo.learner_group.foreach_learner(lambda learner: learner.get_state())]
        assert len(states) == 2
        first, second = (state["rl_module"][DEFAULT_MODULE_ID] for state in states)
        assert first.keys() == second.keys()
        for key in first:
            np.testing.assert_array_equal(first[key], second[key], err_msg=key)
        assert states[0]["log_alpha"] == states[1]["log_alpha"] and states[0]["log_alpha"][DEFAULT_MODULE_ID] != 0.0
    finally:
        algo.stop()


@pytest.mark.parametrize("overrides", [
    ["algo.num_envs_per_env_runner=8", "algo.sac.rollout_steps=8"],  # 16 updates after each 64-step round
    ["algo.num_envs_per_env_runner=1", "algo.sac.rollout_steps=2"],  # u·2 < 1: one update per 2 rounds
    ["algo.num_env_runners=1", "algo.num_envs_per_env_runner=8", "algo.sac.rollout_steps=8"],  # a remote runner
], ids=["updates-per-round", "rounds-per-update", "remote-runner"])
def test_an_iteration_runs_updates_per_step_times_its_env_steps_gradient_updates(ray_session, overrides):
    """`bench sac` reports updates/s as u × env steps/s; RLlib's training_intensity arithmetic
    (``calculate_rr_weights``) must give exactly u · (env steps sampled) LearnerGroup updates, also
    with a remote env runner (RLlib counts the driver's runner among the samplers: 2u before the fix)."""
    config = load_config(None, [*SMALL, "env.id=rllib_shm/CueRecall-D5-v0", "module.memory.kind=gru",
                                "module.max_seq_len=8", "algo.sac.warmup_episodes=4", "algo.sac.batch_episodes=4",
                                "algo.sac.updates_per_step=0.25", "algo.sac.env_steps_per_iteration=128",
                                *overrides])
    algo = build_sac_config(config).build_algo()
    updates, update = [], algo.learner_group.update
    algo.learner_group.update = lambda *args, **kwargs: updates.append(1) or update(*args, **kwargs)
    try:
        while not updates:  # warm-up iterations only sample
            steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        updates.clear()
        result = algo.train()  # a whole iteration with learning
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"] - steps
        assert sampled >= 128
        assert len(updates) == 0.25 * sampled
    finally:
        algo.stop()
