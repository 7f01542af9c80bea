"""The training success rate (``rllib/success.py``) on real RLlib runs: every env runner logs the
finished episodes' ``info["success"]`` over the episode window of ``episode_return_mean`` (checked
equal to it on an env whose return is its success, windows overflowing included, local and remote
env runners), under the project's ``MemoryPPOConfig`` and RLlib's plain ``PPOConfig``
(``module.rllib_lstm``); absent for an env without success (POPGym); ``run.stop_success`` stops a real run
once 100 episodes have finished, also through ``train --smoke-test``, whose MLflow run records ``success_rate``."""

import math
import os
from pathlib import Path

import pytest
import ray

from rllib_shm.config import RunSection, load_config
from rllib_shm.config.ppo import build_ppo_config
from rllib_shm.runs.loop import run_iterations

TESTS = Path(__file__).parent
SUCCESS_ENV = "success_env:LastActionSuccess"  # tests/success_env.py: return = success, 3 steps
TINY = ["module.memory.mem_size=8", "module.memory_output=16", "module.encoder_hiddens=[16]",
        "module.head_hiddens=[16]", "module.max_seq_len=8", "algo.train_batch_size=400", "algo.minibatch_size=200",
        "algo.num_epochs=1", "algo.num_envs_per_env_runner=2"]
LSTM = ["module.rllib_lstm=true", "module.memory.kind=lstm", "module.memory.mem_size=16", "module.head_hiddens=[]"]


@pytest.fixture(scope="module")
def ray_session():
    # remote env runners import this checkout's rllib_shm and tests/success_env.py
    path = os.pathsep.join([str(TESTS), str(TESTS.parent), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ["PYTHONPATH"], saved = path, os.environ.get("PYTHONPATH")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if saved is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = saved


def train(overrides, **run_fields):
    """Lines and per-iteration metrics of a tiny run of the project's loop."""
    algo = build_ppo_config(load_config(None, [*TINY, *overrides])).build_algo()
    seen, lines = [], []
    try:
        run_iterations(algo, RunSection(checkpoint_every=100, **run_fields), seen.append, log=lines.append)
    finally:
        algo.stop()
    return [iteration.metrics for iteration in seen], lines


@pytest.mark.parametrize("module", [[], LSTM], ids=["memory-module", "rllib-lstm"])
def test_success_rate_averages_the_episodes_of_the_return_window(ray_session, module):
    metrics, lines = train([f"env.id={SUCCESS_ENV}", *module], stop_iters=2)
    assert metrics[-1]["episodes"] > 100  # RLlib's 100-episode window has overflowed
    for iteration in metrics:
        assert 0 < iteration["success_rate"] < 1
        assert iteration["success_rate"] == pytest.approx(iteration["episode_return_mean"], abs=1e-9)
    assert f"| success {metrics[-1]['success_rate']:6.1%} |" in lines[-1]


@pytest.mark.slow
def test_success_rate_is_merged_across_remote_env_runners(ray_session):
    metrics, _ = train([f"env.id={SUCCESS_ENV}", "algo.num_env_runners=2", "algo.num_cpus_per_env_runner=0.5"],
                       stop_iters=2)
    for iteration in metrics:
        assert iteration["success_rate"] == pytest.approx(iteration["episode_return_mean"], abs=1e-9)


def test_stop_success_stops_a_visual_match_run_once_100_episodes_have_finished(ray_session):
    """About 13 episodes per iteration: the success rate counts from the first, the stop level only
    over a full window of 100 episodes."""
    metrics, lines = train(["env.id=rllib_shm/VisualMatch-L5-v0"], stop_iters=15, stop_success=0.0)
    covered = [iteration["window_episodes"] for iteration in metrics]
    assert covered[-1] == 100 and all(n < 100 for n in covered[:-1]) and len(metrics) > 1
    assert all(0 <= iteration["success_rate"] <= 1 for iteration in metrics)
    assert lines[-1] == f"success rate {metrics[-1]['success_rate']:.3f} ≥ run.stop_success 0.0: stopping"


def test_no_success_rate_for_an_env_without_success(ray_session):
    metrics, lines = train(["env.id=rllib_shm/popgym-RepeatFirstEasy-v0"], stop_iters=2, stop_success=0.0)
    assert len(metrics) == 2 and all("success_rate" not in iteration for iteration in metrics)  # never stopped
    assert not math.isnan(metrics[-1]["episode_return_mean"]) and "success" not in lines[-1]


def test_train_smoke_test_stops_on_success_and_logs_it_to_mlflow(ray_session, tmp_path):
    """``rllib-shm train --smoke-test`` keeps ``run.stop_success``; MLflow gets ``success_rate``."""
    import mlflow

    from rllib_shm.runs.train import train as train_run

    config = load_config(None, [*TINY, f"env.id={SUCCESS_ENV}", "run.stop_success=0.0", f"run.output_dir={tmp_path}"])
    lines: list[str] = []
    result = train_run(config, smoke_test=True, log=lines.append)  # 256-step iterations, ~85 episodes each
    assert result.iterations == 2 and result.checkpoint.name == "iter_00002"
    assert any(line.endswith("≥ run.stop_success 0.0: stopping") for line in lines), lines
    history = mlflow.MlflowClient(result.tracking_uri).get_metric_history(result.mlflow_run_id, "success_rate")
    assert len(history) == 2 and history[-1].step == result.env_steps  # step: env steps
    assert all(0 <= point.value <= 1 for point in history)
