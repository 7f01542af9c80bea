"""MLflow helpers shared by runs and studies: one get-or-create for experiments, artifacts beside
a local store whatever the working directory, experiments marked as model training, batched logging."""

import math

import mlflow

from rllib_shm.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING,
    experiment_id,
    git_revision,
    log_metrics,
    log_params,
    provenance,
)


def test_local_experiment_keeps_artifacts_beside_its_database(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a command run from another directory
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    first = experiment_id(client, "rllib-shm")
    assert experiment_id(client, "rllib-shm") == first  # found again, not created twice
    experiment = client.get_experiment(first)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    run_id = client.create_run(first).info.run_id
    client.log_text(run_id, "hello", "note.txt")
    written = list((tmp_path / "store" / "mlartifacts").rglob("note.txt"))
    assert len(written) == 1 and written[0].read_text() == "hello"
    assert not any(elsewhere.iterdir())  # nothing scattered into the working directory (no ./mlruns)


def test_existing_experiment_without_a_kind_is_marked_and_logging_is_batched(tmp_path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    legacy = client.create_experiment("legacy")
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(legacy).tags
    assert experiment_id(client, "legacy") == legacy
    assert client.get_experiment(legacy).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    run_id = client.create_run(legacy).info.run_id
    log_params(client, run_id, {"memory.H": 64, "odd key!": True})
    log_metrics(client, run_id, {"episode_return_mean": 0.5, "nan": math.nan, "inf": math.inf, "text": "x"}, step=3)
    data = client.get_run(run_id).data
    assert data.params == {"memory.H": "64", "odd key_": "True"}
    assert data.metrics == {"episode_return_mean": 0.5}
    assert [m.step for m in client.get_metric_history(run_id, "episode_return_mean")] == [3]


def test_provenance_names_the_checkout_revision():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    assert head and git_revision().removesuffix("-dirty") == head
    assert provenance()["git_revision"] == git_revision()


def test_run_tags_name_the_algorithm_and_a_sac_critics_own_memory():
    from pathlib import Path

    from rllib_shm.studies.runner import candidate_configs
    from rllib_shm.studies.study import load_study
    from rllib_shm.tracking import run_tags

    root = Path(__file__).parents[1] / "tune_configs"
    # a critic-memory comparison: the actors are alike (GRU 64), the critics differ
    arms = {}
    for config in candidate_configs(load_study(root / "wind_meta_sac_scaled.yaml")):
        tags = run_tags(config)
        assert tags["algorithm"] == "SAC" and tags["memory"] == "gru"
        arms[tags["critic_memory"]] = tags
    assert set(arms) == {"shm", "gru"}
    assert arms["shm"]["critic_theta_mode"] == "random" and "critic_theta_mode" not in arms["gru"]
    # SAC-Discrete with one memory for actor and critic: no critic tag; PPO is PPO
    sacd = run_tags(candidate_configs(load_study(root / "key_to_door_sac_scaled.yaml"))[0])
    assert sacd["algorithm"] == "SAC" and "critic_memory" not in sacd
    ppo = run_tags(candidate_configs(load_study(root / "quickstart.yaml"))[0])
    assert ppo["algorithm"] == "PPO" and "critic_memory" not in ppo
