"""Studies: bad input is refused before anything is written; Optuna's suggestions repeat per seed;
the leaderboard's success column."""

import math
import subprocess
import sys

import optuna
import pandas as pd
import pytest
import yaml
from ray.tune.search.optuna import OptunaSearch

from rllib_shm.studies.leaderboard import format_leaderboard, leaderboard
from rllib_shm.studies.search_space import split_search_space, to_optuna
from rllib_shm.studies.study import load_study

STUDY = {
    "env": {"id": "rllib_shm/CueRecall-D5-v0"},
    "module": {"memory": {"kind": {"choice": ["shm", "gru", "mlp"]}, "mem_size": 8}},
    "algo": {"lr": {"loguniform": [1e-4, 1e-2]}, "train_batch_size": 256, "minibatch_size": 128},
    "run": {"stop_iters": 2},
    "tune": {"name": "t", "num_samples": 2},
}


def write(tmp_path, data, name="study.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def suggestions(seed, count=6):
    _, space = split_search_space({k: v for k, v in STUDY.items() if k != "tune"})
    searcher = OptunaSearch(space=to_optuna(space), metric="m", mode="max",
                            sampler=optuna.samplers.TPESampler(seed=seed))
    return [searcher.suggest(f"trial_{i}") for i in range(count)]


def test_same_seed_same_suggestions_other_seed_others():
    first, again, other = suggestions(0), suggestions(0), suggestions(1)
    assert first == again
    assert first != other
    assert {s["module.memory.kind"] for s in first} <= {"shm", "gru", "mlp"}


def test_study_loads_with_cli_overrides(tmp_path):
    study = load_study(write(tmp_path, STUDY), ["run.stop_iters=3"], num_samples=5, storage_path=str(tmp_path))
    assert study.tune.num_samples == 5 and study.base["run"]["stop_iters"] == 3
    assert set(study.space) == {"module.memory.kind", "algo.lr"}
    assert study.tune.optuna_storage() == f"sqlite:///{tmp_path.resolve() / 't' / 'optuna.db'}"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["algo"].update(lr={"loguniform": [1e-2, 1e-4]}), "algo.lr: loguniform needs low < high"),
        (lambda d: d["module"]["memory"].update(kind="shm") or d["algo"].update(lr=1e-3), "searches nothing"),
        (lambda d: d["algo"].update(learning_rate={"uniform": [0.1, 0.2]}), "unknown config key"),
        (lambda d: d["tune"].update(num_sample=3), r"unknown config key\(s\) \['tune.num_sample'\]"),
        (lambda d: d["tune"].update(metric="reward"), "tune.metric must be one of"),
        (lambda d: d["run"].update(name="mine"), r"run.name has no meaning in a study \(a study names itself"),
        (lambda d: d["run"].update(output_dir="out"), r"run.output_dir has no meaning in a study"),
        (lambda d: d["run"].update(output_dir={"choice": ["a", "b"]}), r"run.output_dir has no meaning"),
        (lambda d: d.update(variants={"a": {"run.name": "x"}}), r"run.name has no meaning in a study"),
    ],
)
def test_bad_studies_are_refused(tmp_path, mutate, message):
    import copy

    data = copy.deepcopy(STUDY)
    mutate(data)
    with pytest.raises(ValueError, match=message):
        load_study(write(tmp_path, data))


def test_variants_times_seeds_on_the_grid(tmp_path):
    """One-factor-at-a-time: every variant with every seed once; the configs the runner checks
    before starting are the variants' own."""
    from rllib_shm.studies.runner import candidate_configs
    from rllib_shm.studies.study import grid_size

    data = {**STUDY, "module": {"memory": {"kind": "shm", "mem_size": 8}},
            "variants": {"baseline": {}, "gru": {"module.memory.kind": "gru"}, "lr": {"algo.lr": 1e-2}},
            "run": {"stop_iters": 2, "seed": {"choice": [0, 1]}},
            "tune": {"name": "t", "num_samples": 6, "sampler": "grid"}}
    data["algo"] = {k: v for k, v in STUDY["algo"].items() if k != "lr"}
    study = load_study(write(tmp_path, data))
    assert set(study.space) == {"run.seed", "variant"} and grid_size(study.space) == 6
    configs = candidate_configs(study)
    assert sorted((c.module.memory.kind, c.algo.lr, c.run.seed) for c in configs) == sorted(
        (kind, lr, seed) for kind, lr in (("shm", 5e-4), ("gru", 5e-4), ("shm", 1e-2)) for seed in (0, 1))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "rllib_shm.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_refuses_before_writing_anything(tmp_path):
    storage = tmp_path / "storage"
    broken = write(tmp_path, "env: [unclosed\n", "broken.yaml")
    done = cli("tune", broken, "--storage", storage)
    assert done.returncode == 2 and "is not valid YAML" in done.stderr

    good = write(tmp_path, STUDY)
    done = cli("tune", good, "--storage", storage, "--resume")
    assert done.returncode == 2 and "there is no study to resume" in done.stderr

    done = cli("tune", good, "--storage", storage, "--mlflow-uri", "http://127.0.0.1:9")
    assert done.returncode == 2 and "MLflow tracking URI 'http://127.0.0.1:9' is not reachable" in done.stderr
    assert not storage.exists()  # no Tune dir, no Optuna db, no MLflow db


def test_a_study_on_remote_storage_is_unlocked_and_says_so_once_its_checks_pass(tmp_path, monkeypatch):
    """A URI storage (``file://`` here, as ``s3://`` or ``gs://``) has no driver lock: one warning line
    says so, after every check and before Ray starts (stopped there)."""
    from rllib_shm.studies import runner

    class RayStarting(Exception):
        pass

    def ensure_ray():
        raise RayStarting

    monkeypatch.setattr(runner, "ensure_ray", ensure_ray)
    storage = f"file://{tmp_path / 'tune'}"
    data = {**STUDY, "tune": {**STUDY["tune"], "study_storage": f"sqlite:///{tmp_path / 'optuna.db'}"}}
    study = load_study(write(tmp_path, data), storage_path=storage)
    said = []
    with pytest.raises(RayStarting):
        runner.run_study(study, mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", log=said.append)
    assert said == [f"warning: study 't' is on remote storage ({storage}/t), which is not locked: run one driver "
                    "at a time for it yourself (a second driver or --resume is not refused)"]
    assert not list(tmp_path.rglob("*.driver.lock")) and not (tmp_path / "tune").exists()


def test_a_failed_study_leaves_no_mlflow_run_running(tmp_path):
    """What run_study does when tuner.fit() raises: the parent and unfinished trials end FAILED."""
    from types import SimpleNamespace

    from rllib_shm.studies.mlflow_runs import StudyTracker

    study = load_study(write(tmp_path, STUDY))
    tracker = StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "rllib-shm", "t", study.base, study.space)
    parent = tracker.ensure_parent(params={"num_samples": 2}, tags={})
    trials = [SimpleNamespace(trial_id=i, config={"module.memory.kind": "gru", "algo.lr": 1e-3}) for i in "ab"]
    children = [tracker.child(trial) for trial in trials]
    tracker.on_trial_complete(0, trials, trials[0])
    tracker.close_open_runs("FAILED")
    status = {run_id: tracker.client.get_run(run_id).info.status for run_id in (parent, *children)}
    assert status == {parent: "FAILED", children[0]: "FINISHED", children[1]: "FAILED"}


def test_a_fresh_study_gets_its_own_parent_run_and_a_resumed_one_the_newest(tmp_path):
    """A study run again fresh (its Tune store removed, no --resume) must not adopt the parent run of
    the earlier attempt, with that attempt's children and status; a resume finds the newest, and so
    does the report."""
    import time

    from rllib_shm.studies.mlflow_runs import StudyTracker
    from rllib_shm.tracking import find_study_parent

    study = load_study(write(tmp_path, STUDY))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def tracker():
        return StudyTracker(uri, "rllib-shm", "t", study.base, study.space)

    first = tracker()
    old = first.ensure_parent(params={"num_samples": 2}, tags={}, fresh=True)
    first.close_open_runs("KILLED")  # the earlier attempt, interrupted
    time.sleep(0.01)  # distinct start times
    new = tracker().ensure_parent(params={"num_samples": 2}, tags={}, fresh=True)
    assert new != old
    assert tracker().ensure_parent(params={"num_samples": 2}, tags={}) == new  # --resume
    client = first.client
    assert client.get_run(old).info.status == "KILLED" and client.get_run(new).info.status == "RUNNING"
    assert find_study_parent(client, "t").info.run_id == new


def test_runs_and_optuna_trials_of_dropped_trials_are_closed_after_a_resumed_fit(tmp_path):
    """What run_study does after fit: a child run and an Optuna trial left RUNNING by a killed driver
    (their trial unknown to the restored experiment) end FAILED / FAIL; finished ones are untouched."""
    from types import SimpleNamespace

    from rllib_shm.studies.mlflow_runs import StudyTracker
    from rllib_shm.studies.runner import close_dropped_optuna_trials

    study = load_study(write(tmp_path, STUDY))
    tracker = StudyTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "rllib-shm", "t", study.base, study.space)
    parent = tracker.ensure_parent(params={"num_samples": 2}, tags={})
    trials = [SimpleNamespace(trial_id=i, config={"module.memory.kind": "gru", "algo.lr": 1e-3}) for i in "ab"]
    kept, dropped = (tracker.child(trial) for trial in trials)
    tracker.on_trial_complete(0, trials, trials[0])
    assert tracker.close_dropped_children() == [dropped]
    runs = {run_id: tracker.client.get_run(run_id) for run_id in (parent, kept, dropped)}
    assert [runs[r].info.status for r in (parent, kept, dropped)] == ["RUNNING", "FINISHED", "FAILED"]
    assert "rllib_shm.dropped" in runs[dropped].data.tags and "rllib_shm.dropped" not in runs[kept].data.tags

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert close_dropped_optuna_trials("t", url) == []  # no study yet
    optuna_study = optuna.create_study(study_name="t", storage=url)
    done = optuna_study.ask()
    optuna_study.tell(done, 1.0)
    left = optuna_study.ask()
    assert close_dropped_optuna_trials("t", url) == [left.number]
    states = [t.state for t in optuna.load_study(study_name="t", storage=url).get_trials()]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


class FakeResult:
    """What ``leaderboard`` reads of a Tune ``Result``."""

    def __init__(self, name, lr, returns, successes=None):
        iterations = list(range(1, len(returns) + 1))
        frame = {"episode_return_max_mean": returns, "episode_return_mean": returns, "iteration": iterations,
                 "env_steps": [100 * i for i in iterations]}
        if successes is not None:
            frame["success_rate"] = successes
        self.metrics_dataframe = pd.DataFrame(frame)
        self.path, self.config, self.error = f"/tmp/study/{name}", {"algo.lr": lr}, None
        self.best_checkpoints, self.checkpoint = [], None


def test_leaderboard_shows_the_last_success_rate_where_trials_report_one(tmp_path):
    study = load_study(write(tmp_path, {**STUDY, "module": {"memory": {"kind": "shm", "mem_size": 8}}}))
    nan = float("nan")
    rows = leaderboard([FakeResult("trial_a", 1e-3, [1.0, 9.0], [nan, 0.5]),
                        FakeResult("trial_b", 2e-3, [12.0, 11.0], [0.75, 0.9])], study)
    assert [(row["trial"], row["final_success"]) for row in rows] == [("trial_b", 0.9), ("trial_a", 0.5)]
    assert "final_success" in format_leaderboard(rows, study.tune.metric)
    without = leaderboard([FakeResult("trial_c", 1e-3, [0.1, 0.2]), FakeResult("trial_d", 2e-3, [0.3], [nan])], study)
    assert all("final_success" not in row for row in without) and math.isfinite(without[0]["final_return"])
