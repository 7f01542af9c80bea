"""Your own env (docs/own-env.md): the example ``docs/examples/my_env`` as documented, from a fresh
directory holding only its two files, with nothing on PYTHONPATH but the project; the env itself
against its analytic scores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "my_env"


def load_my_cue():
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_cue_example", EXAMPLE / "my_cue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MyCue


def mean_return(env, policy, episodes: int = 400) -> float:
    total = 0.0
    for episode in range(episodes):
        observation, _ = env.reset(seed=episode)
        seen, done = None, False
        while not done:
            seen = int(np.argmax(observation[:-1])) if seen is None else seen
            observation, reward, terminated, truncated, info = env.step(policy(seen))
            total += reward
            done = terminated or truncated
        assert info["success"] == (reward == 1.0)
    return total / episodes


def test_my_cue_pays_a_memory_plus_one_and_a_guess_two_over_k_minus_one():
    env = load_my_cue()(num_cues=4, delay=3)
    assert mean_return(env, lambda cue: cue) == 1.0  # remembers the first observation
    assert mean_return(env, lambda cue: 0) == pytest.approx(2 / 4 - 1, abs=0.1)  # the best memoryless answer


@pytest.mark.slow
def test_the_example_study_runs_as_documented_from_a_fresh_directory(tmp_path):
    """``cd my_env && rllib-shm tune my_cue_study.yaml`` (budget shrunk to one trial of one small
    iteration): the driver imports ``my_cue`` from the current directory and so does the Ray
    worker running the trial; the run is named and logged as any other."""
    folder = tmp_path / "my_env"
    shutil.copytree(EXAMPLE, folder)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # my_cue is importable from nowhere else
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "rllib_shm.cli", "tune", "my_cue_study.yaml", "--num-samples", "1",
               "--max-concurrent", "1", "--set", "run.stop_iters=1", "--set", "algo.train_batch_size=256",
               "--set", "algo.minibatch_size=128", "--set", "algo.num_epochs=1"]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "compare the trials of study my_cue in MLflow: http://127.0.0.1:5000/#/experiments/" in output
    assert "rllib-shm report my_cue" in output

    client = mlflow.MlflowClient(f"sqlite:///{folder / 'results' / 'tune' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("my_cue")  # the study's own experiment
    (trial,) = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    kind = trial.data.params["module.memory.kind"]  # the grid sampler's first pick
    assert trial.info.status == "FINISHED" and trial.info.run_name == {"shm": "shm-H16 s0", "mlp": "mlp s0"}[kind]
    assert trial.data.params["env.id"] == "my_cue:MyCue"
    assert "episode_return_mean" in trial.data.metrics
