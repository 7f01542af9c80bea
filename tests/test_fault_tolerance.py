"""Env-runner fault tolerance: a remote env runner's process is killed mid-training; the run goes on,
finishes, and its MLflow metrics and episode count have no gap."""

from pathlib import Path

import mlflow
import pytest

from rllib_shm.config import load_config
from rllib_shm.runs.train import train

TESTS = Path(__file__).parent


@pytest.mark.slow
def test_a_killed_env_runner_is_restarted_and_the_run_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the env runners (Ray workers) import crash_env
    kill_file = tmp_path / "kill-one-runner"
    kill_file.touch()
    iterations, batch = 14, 400  # enough time for the restarted runner to rejoin
    config = load_config(None, [
        "env.id=crash_env:CrashOnce", f"env.config={{kill_file: {kill_file}, after_steps: 150, step_delay: 0.004}}",
        "module.memory.mem_size=8", "module.memory_output=16", "module.encoder_hiddens=[16]",
        "module.head_hiddens=[16]", "module.max_seq_len=20",
        "algo.num_env_runners=2", "algo.num_envs_per_env_runner=2", "algo.num_cpus_per_env_runner=0.5",
        f"algo.train_batch_size={batch}", "algo.minibatch_size=200", "algo.num_epochs=1",
        f"run.stop_iters={iterations}", f"run.checkpoint_every={iterations}", f"run.output_dir={tmp_path / 'out'}",
    ])
    lines: list[str] = []
    result = train(config, log=lines.append)

    assert not kill_file.exists()  # a runner process was killed
    assert result.iterations == iterations
    assert any("1 env runner(s) crashed: 1 healthy" in line for line in lines), lines
    assert any("1 env runner(s) restarted and rejoined" in line for line in lines), lines
    client = mlflow.MlflowClient(result.tracking_uri)
    assert client.get_run(result.mlflow_run_id).info.status == "FINISHED"

    def history(name):
        return [m.value for m in sorted(client.get_metric_history(result.mlflow_run_id, name), key=lambda m: m.step)]

    logged = client.get_metric_history(result.mlflow_run_id, "env_steps")  # MLflow's step is the env steps
    assert len(logged) == iterations and all(m.step == m.value for m in logged)
    assert sorted(m.value for m in client.get_metric_history(result.mlflow_run_id, "iteration")) == \
        list(range(1, iterations + 1))
    steps, episodes = history("env_steps"), history("episodes")
    # every iteration sampled a full batch: the healthy runner finished the lost one's share
    assert all(after - before >= batch for before, after in zip([0, *steps], steps, strict=False)), steps
    assert all(after > before for before, after in zip(episodes, episodes[1:], strict=False)), episodes
    assert history("env_runner_restarts")[-1] == 1 and history("healthy_env_runners")[-1] == 2
