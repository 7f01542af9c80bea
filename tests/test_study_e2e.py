"""Studies end to end against a real MLflow server on 127.0.0.1: Tune, Optuna and MLflow agree;
a driver killed with SIGKILL resumes without losing or repeating a trial."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml

STUDY = {
    "env": {"id": "rllib_shm/CueRecall-D5-v0"},
    "module": {"memory": {"kind": {"choice": ["shm", "gru", "mlp"]}, "mem_size": 8}, "max_seq_len": 8,
               "encoder_hiddens": [16], "memory_output": 16, "head_hiddens": [16]},
    "algo": {"lr": {"loguniform": [1e-4, 1e-2]}, "train_batch_size": 256, "minibatch_size": 128,
             "num_epochs": 1, "num_envs_per_env_runner": 2},
    "run": {"stop_iters": 3, "checkpoint_every": 1},
    "tune": {"name": "e2e", "num_samples": 3, "max_concurrent": 1, "seed": 0},
}


def study_file(tmp_path, name, **tune):
    data = json.loads(json.dumps(STUDY))
    data["tune"].update(name=name, **tune)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def tune_cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "rllib_shm.cli", "tune", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            **kwargs)


def runs_of(uri, study):
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)  # each study has its own experiment
    runs = client.search_runs([experiment.experiment_id], f"tags.`rllib_shm.study` = '{study}'")
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    children = [r for r in runs if r.data.tags.get("kind") == "trial"]
    return parents, children


def trial_dirs(experiment_dir: Path):
    return sorted(p for p in experiment_dir.glob("trial_*") if p.is_dir())


def optuna_trials(storage: Path, name: str):
    """The Optuna study's trials ([] while the study does not exist yet); only once no driver runs."""
    try:
        study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage / name / 'optuna.db'}")
    except KeyError:
        return []
    return study.get_trials(deepcopy=False)


def polled_trial_states(storage: Path, name: str) -> list[tuple[int, str]]:
    """(number, state) of the study's trials, read while the driver may be creating the database.

    Read-only SQLite, never Optuna's storage: opening that stamps the schema version (a write),
    which races with the driver doing the same (``UNIQUE constraint failed: alembic_version``).
    A database or schema not created yet reads as "no trials yet"."""
    path = storage / name / "optuna.db"
    if not path.exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return db.execute("SELECT trials.number, trials.state FROM trials JOIN studies "
                              "ON trials.study_id = studies.study_id WHERE studies.study_name = ?",
                              (name,)).fetchall()
    except sqlite3.OperationalError:  # no such table (yet), or locked by the writer
        return []


def first_trial_finished(storage, name):
    return any(state == "COMPLETE" for _, state in polled_trial_states(storage, name))


def second_trial_starting(storage, name):
    """Trial #2 was just suggested (its Optuna trial is RUNNING): the moment Tune may not have
    saved it in the experiment state yet, so a restore drops it."""
    return any(number >= 1 and state == "RUNNING" for number, state in polled_trial_states(storage, name))


@pytest.mark.slow
def test_study_tune_optuna_and_mlflow_agree(tmp_path, mlflow_server):
    storage = tmp_path / "tune"
    # ASHA on, with a grace period as long as the trials (it runs but stops nobody)
    study = study_file(tmp_path, "agree", scheduler="asha", grace_period=3)
    process = tune_cli(study, "--storage", storage, "--mlflow-uri", mlflow_server)
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]
    assert "leaderboard (by episode_return_max_mean)" in output

    trials = trial_dirs(storage / "agree")
    assert len(trials) == 3
    ids = {p.name.removeprefix("trial_") for p in trials}
    completed = [t for t in optuna_trials(storage, "agree") if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(completed) == 3
    parents, children = runs_of(mlflow_server, "agree")
    assert len(parents) == 1 and len(children) == 3
    assert {c.data.tags["rllib_shm.trial_id"] for c in children} == ids
    assert all(c.data.tags["rllib_shm.study_run"] == parents[0].info.run_id for c in children)
    assert not any("mlflow.parentRunId" in c.data.tags for c in children)  # top-level rows in MLflow's UI
    assert all(c.info.status == "FINISHED" and "episode_return_max_mean" in c.data.metrics for c in children)
    # Optuna's suggestions are the trials' configurations
    suggested = sorted(t.params["algo.lr"] for t in completed)
    logged = sorted(float(c.data.params["algo.lr"]) for c in children)  # once, under its config path
    assert not any(key.startswith("searched.") or key == "lr" for c in children for key in c.data.params)
    assert suggested == pytest.approx(logged)
    artifacts = {a.path for a in mlflow.MlflowClient(mlflow_server).list_artifacts(parents[0].info.run_id)}
    assert {"leaderboard.csv", "learning_curves.png", "best_config.yaml"} <= artifacts


@pytest.mark.slow
@pytest.mark.parametrize("moment", [first_trial_finished, second_trial_starting], ids=lambda f: f.__name__)
def test_killed_driver_resumes_without_losing_or_repeating_trials(tmp_path, mlflow_server, moment):
    """Exactly once after kill and resume: one FINISHED child run and one COMPLETE Optuna trial per
    trial; a trial the restore dropped has its run FAILED (tagged) and its Optuna trial FAIL."""
    storage, name = tmp_path / "tune", f"crash-{moment.__name__}"  # one MLflow server for the module: own name
    study = study_file(tmp_path, name, num_samples=3)
    process = tune_cli(study, "--storage", storage, "--mlflow-uri", mlflow_server, "--set", "run.stop_iters=4")
    deadline = time.time() + 600
    while time.time() < deadline:
        if moment(storage, name):
            break
        assert process.poll() is None, process.stdout.read()[-3000:]
        time.sleep(0.1)
    else:
        pytest.fail(f"{moment.__name__} did not happen in time")
    os.killpg(process.pid, signal.SIGKILL)  # the driver and everything it started
    process.wait(timeout=60)
    finished_before = {t.number for t in optuna_trials(storage, name) if t.state == optuna.trial.TrialState.COMPLETE}
    finished_dirs = {p.name: (p / "progress.csv").read_text() for p in trial_dirs(storage / name)
                     if (p / "progress.csv").exists() and len((p / "progress.csv").read_text().splitlines()) == 5}

    resumed = tune_cli(study, "--storage", storage, "--mlflow-uri", mlflow_server, "--set", "run.stop_iters=4",
                       "--resume")
    output, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, output[-3000:]

    for trial, rows in finished_dirs.items():  # finished trials were not run again
        assert (storage / name / trial / "progress.csv").read_text() == rows
    complete_dirs = {p.name.removeprefix("trial_") for p in trial_dirs(storage / name)
                     if (p / "progress.csv").exists() and len((p / "progress.csv").read_text().splitlines()) == 5}
    assert len(complete_dirs) == 3
    optuna_all = optuna_trials(storage, name)
    states = [t.state for t in optuna_all]
    complete = {t.number for t in optuna_all if t.state == optuna.trial.TrialState.COMPLETE}
    assert finished_before <= complete and len(complete) == 3
    assert optuna.trial.TrialState.RUNNING not in states
    parents, children = runs_of(mlflow_server, name)
    assert len(parents) == 1
    finished = [c for c in children if c.info.status == "FINISHED"]
    dropped = [c for c in children if c.info.status != "FINISHED"]
    assert {c.data.tags["rllib_shm.trial_id"] for c in finished} == complete_dirs and len(finished) == 3
    assert all("episode_return_max_mean" in c.data.metrics for c in finished)
    assert all(c.info.status == "FAILED" and "rllib_shm.dropped" in c.data.tags for c in dropped)
    assert states.count(optuna.trial.TrialState.FAIL) >= len(dropped)  # (Optuna asks before the run exists)


@pytest.mark.slow
def test_interrupted_driver_closes_runs_killed_and_resumes(tmp_path, mlflow_server):
    """SIGINT (Ctrl-C) while a trial runs: Tune saves its state and returns; the study exits 130 with
    the running trial's MLflow run KILLED (not FAILED as dropped) and its Optuna trial still RUNNING,
    and ``--resume`` finishes it: one FINISHED run and one COMPLETE Optuna trial per trial. The study
    has one trial, so every trial exists when the signal comes: Tune then reports the stopped trial
    TERMINATED like a finished one, and only its last result (not ``done``) tells them apart."""
    num_samples = 1
    storage, name = tmp_path / "tune", "interrupted"
    study = study_file(tmp_path, name, num_samples=num_samples)
    process = tune_cli(study, "--storage", storage, "--mlflow-uri", mlflow_server, "--set", "run.stop_iters=4")
    deadline = time.time() + 600
    while not any(p.exists() and len(p.read_text().splitlines()) >= 2
                  for p in (storage / name).glob("trial_*/progress.csv")):
        assert process.poll() is None and time.time() < deadline, process.stdout.read()[-3000:]
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)  # the driver only, as a terminal's Ctrl-C reaches it
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 130, output[-3000:]
    assert f"study {name} interrupted with" in output and "--resume" in output
    _, children = runs_of(mlflow_server, name)
    assert children and all("rllib_shm.dropped" not in c.data.tags for c in children)
    assert "KILLED" in {c.info.status for c in children} and "FAILED" not in {c.info.status for c in children}
    assert optuna.trial.TrialState.FAIL not in {t.state for t in optuna_trials(storage, name)}

    resumed = tune_cli(study, "--storage", storage, "--mlflow-uri", mlflow_server, "--set", "run.stop_iters=4",
                       "--resume")
    output, _ = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, output[-3000:]
    states = [t.state for t in optuna_trials(storage, name)]
    assert states == [optuna.trial.TrialState.COMPLETE] * num_samples
    _, children = runs_of(mlflow_server, name)
    assert len(children) == num_samples and all(c.info.status == "FINISHED" and "rllib_shm.dropped" not in c.data.tags
                                      for c in children)
