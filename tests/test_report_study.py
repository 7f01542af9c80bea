"""``rllib-shm report`` on a tiny real study (run once per module, local SQLite store, plus an MLflow
server over it): every number equals MLflow's own, the grid's missing trials are shown, the files are
logged to the parent run, experiment and run-id reports agree, and ``evaluate`` runs of the trials'
checkpoints are nested under them and tabulated. The synthetic-run tests are in test_report.py."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from PIL import Image
from test_report import CUE, table_row

from conftest import kill_session, start_mlflow_server, stop_mlflow_server, wait_for_mlflow_server
from rllib_shm.cli import main
from rllib_shm.reports.report import ReportRequest, make_report
from rllib_shm.tracking import check_tracking_uri

STUDY = {
    "env": {"id": CUE},
    "module": {"memory": {"choice": [{"kind": "shm", "mem_size": 8}, {"kind": "gru", "mem_size": 8}]},
               "max_seq_len": 8, "encoder_hiddens": [16], "memory_output": 16, "head_hiddens": [16]},
    "algo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 2},
    "run": {"stop_iters": 3, "checkpoint_every": 3, "seed": {"choice": [0, 1]}},
    # 3 of the grid's 4 combinations: one cell misses a seed
    "tune": {"name": "tiny", "num_samples": 3, "max_concurrent": 1, "seed": 0, "sampler": "grid"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tiny study, run once with a local SQLite store; an MLflow server over that store starts
    meanwhile (its start-up takes as long as the study on 2 busy cores). Yields (storage, server URI)."""
    root = tmp_path_factory.mktemp("report")
    (root / "tiny.yaml").write_text(yaml.safe_dump(STUDY))
    store = f"sqlite:///{root / 'tune' / 'mlflow.db'}"
    check_tracking_uri(store)  # the tables exist before the server and the study's driver open the store
    server, server_uri = start_mlflow_server(store, root / "server_artifacts")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    try:
        process = subprocess.Popen([sys.executable, "-m", "rllib_shm.cli", "tune", str(root / "tiny.yaml"),
                                    "--storage", str(root / "tune")], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)
        try:
            output, _ = process.communicate(timeout=600)
        finally:
            kill_session(process.pid)
        assert process.returncode == 0, output[-3000:]
        wait_for_mlflow_server(server_uri)
        yield root / "tune", server_uri
    finally:
        stop_mlflow_server(server)


def mlflow_truth(uri):
    """Per (env, memory kind): the final MMER and the metric histories of every finished trial run."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny")  # the study's own experiment
    runs = client.search_runs([experiment.experiment_id], "tags.`rllib_shm.study` = 'tiny' and tags.kind = 'trial'")
    parents = client.search_runs([experiment.experiment_id], "tags.`rllib_shm.study` = 'tiny' and tags.kind = 'study'")
    truth = {}
    for run in runs:
        assert run.info.status == "FINISHED"
        histories = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
                     for key in ("episode_return_mean", "env_steps", "success_rate", "window_episodes")}
        truth.setdefault((run.data.params["env.id"], run.data.params["module.memory.kind"]), []).append(
            (run.data.metrics["episode_return_max_mean"], histories))
    return truth, parents[0].info.run_id, [run.info.run_id for run in runs]


def settled(histories):
    """The steps whose means cover a full window of 100 episodes (all of them if none does)."""
    full = {step for step, episodes in histories["window_episodes"].items() if episodes >= 100}
    return full or set(histories["episode_return_mean"])


def first_reached(histories, threshold):
    returns, steps = histories["episode_return_mean"], histories["env_steps"]
    return next((steps[i] for i in sorted(returns) if i in settled(histories) and returns[i] >= threshold), None)


def check_against_mlflow(result, uri, threshold):
    truth, _, _ = mlflow_truth(uri)
    table = result.table
    assert {(c.task, c.variant.memory_kind) for c in table.cells.values()} == set(truth) == {(CUE, "shm"), (CUE, "gru")}
    markdown = result.files[0].read_text()
    rows = {row["variant"]: row for row in csv.DictReader(result.files[1].open())}
    for (_, kind), runs in truth.items():
        cell = next(c for c in table.cells.values() if c.variant.memory_kind == kind)
        values = [mmer for mmer, _ in runs]
        assert cell.n == len(values) and cell.mean == pytest.approx(np.mean(values), rel=1e-12)
        assert cell.std == pytest.approx(np.std(values), abs=1e-12)
        assert float(rows[cell.variant.label]["mmer_mean"]) == pytest.approx(np.mean(values), rel=1e-12)
        assert f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}" in markdown
        reached = [s for s in (first_reached(h, threshold) for _, h in runs) if s is not None]
        assert sorted(cell.reached(threshold)) == sorted(reached)
        # CueRecall reports info["success"]: the best success rate per run, from MLflow's history
        best = [max(v for step, v in h["success_rate"].items() if step in settled(h)) for _, h in runs]
        assert sorted(cell.success()) == pytest.approx(sorted(best), abs=1e-12)
        assert float(rows[cell.variant.label]["success_best_mean"]) == pytest.approx(np.mean(best), rel=1e-12)
    assert "## Success rate" in markdown
    return truth


@pytest.mark.slow
def test_report_of_a_real_study_equals_mlflow_and_is_logged_to_its_parent_run(study, tmp_path, capsys):
    study, _ = study
    uri = f"sqlite:///{study / 'mlflow.db'}"
    out = tmp_path / "report"
    result = make_report(ReportRequest(out=out, study="tiny", storage=str(study), threshold=-0.2))
    truth = check_against_mlflow(result, uri, -0.2)
    assert "reading the metric histories of 3 run(s)" in capsys.readouterr().out
    markdown = (out / "report.md").read_text()
    # incomplete: 3 trials of a grid of 4; the cell with one seed misses one
    assert "**Incomplete**: 1 of the grid's 4 combinations have no finished run; the study asks for only 3" in markdown
    for (_, kind), runs in truth.items():
        label = {"shm": "SHM H8", "gru": "GRU 8"}[kind]
        assert f"| CueRecall-D5 | {label} | {len(runs)} | 2 | {2 - len(runs)} | 0 / 0 / 0 |" in markdown
    assert sum(len(runs) for runs in truth.values()) == 3
    # bold best, average row, budget (768 env steps per trial), the curve figure
    means = {kind: np.mean([mmer for mmer, _ in runs]) for (_, kind), runs in truth.items()}
    row = table_row(markdown, "CueRecall-D5")
    for variant, text in zip(result.table.variants, row, strict=True):
        assert text.startswith("**") == (means[variant.memory_kind] == max(means.values())), row
    assert all(text.endswith("(1/1 tasks)") for text in table_row(markdown, "average"))
    assert "| CueRecall-D5 | 768 | not a task of the paper |" in markdown and "Total: 2,304 env steps" in markdown
    png = out / "curves_CueRecall-D5-v0.png"
    assert "![CueRecall-D5](curves_CueRecall-D5-v0.png)" in markdown and png.stat().st_size > 10_000
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (700, 750)  # returns above, success rates below
    # the artifacts of the study's parent run, in the local SQLite store's artifact root
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = mlflow_truth(uri)[1]
    assert result.logged_to == parent
    logged = {Path(a.path).name for a in client.list_artifacts(parent, "report")}
    assert logged == {"report.md", "table.csv", "curves_CueRecall-D5-v0.png"}
    copy = client.download_artifacts(parent, "report/report.md", str(tmp_path))
    assert Path(copy).read_text() == markdown


@pytest.mark.slow
def test_report_through_an_mlflow_server(study, tmp_path):
    study, uri = study
    out = tmp_path / "server_report"
    result = make_report(ReportRequest(out=out, study="tiny", storage=str(study), mlflow_uri=uri, threshold=0.0))
    check_against_mlflow(result, uri, 0.0)
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = mlflow_truth(uri)[1]
    assert result.logged_to == parent
    text = Path(client.download_artifacts(parent, "report/report.md", str(tmp_path))).read_text()
    assert text == (out / "report.md").read_text() and f"at `{uri}`" in text


@pytest.mark.slow
def test_experiment_and_run_ids_report_the_same_cells_and_output_is_never_overwritten(study, tmp_path, capsys):
    study, _ = study
    _, parent, run_ids = mlflow_truth(f"sqlite:///{study / 'mlflow.db'}")
    rows = {}
    for name, source in (("experiment", ["--experiment", "tiny"]), ("runs", ["--runs", *run_ids])):
        out = tmp_path / name
        assert main(["report", *source, "--storage", str(study), "--out", str(out), "--no-mlflow-log"]) == 0
        rows[name] = list(csv.DictReader((out / "table.csv").open()))
        # the finished study's parent keeps study.yaml: the grid is known without the Tune directory
        assert "| CueRecall-D5 | SHM H8 |" in (out / "report.md").read_text()
        assert "of the grid's 4 combinations" in (out / "report.md").read_text()
    assert rows["experiment"] == rows["runs"] and len(rows["runs"]) == 2
    assert {row["n"] for row in rows["runs"]} == {"1", "2"}

    out = tmp_path / "runs"
    (out / "notes.txt").write_text("mine")
    before = (out / "report.md").read_text()
    capsys.readouterr()
    assert main(["report", "--runs", *run_ids, "--storage", str(study), "--out", str(out), "--no-mlflow-log"]) == 2
    assert "already holds report files ['report.md', 'table.csv', 'curves_CueRecall-D5-v0.png']" in \
        capsys.readouterr().err
    assert (out / "report.md").read_text() == before
    # --force overwrites the report files only; runs of one study log to its parent run
    assert main(["report", "--runs", *run_ids, "--storage", str(study), "--out", str(out), "--force",
                 "--threshold", "0.5"]) == 0
    markdown = (out / "report.md").read_text()
    assert "## Env steps to a mean return of 0.5" in markdown and markdown != before
    assert (out / "notes.txt").read_text() == "mine"
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{study / 'mlflow.db'}")
    assert Path(client.download_artifacts(parent, "report/report.md", str(tmp_path))).read_text() == markdown


@pytest.mark.slow
def test_evaluations_of_study_checkpoints_are_nested_under_their_trials_and_reported(study, tmp_path, monkeypatch,
                                                                                   capsys):
    """`evaluate` on a study trial's checkpoint logs to the study's store under the trial's run (no
    --mlflow-uri); the report's Evaluations section and evaluations.csv equal the evaluations' own
    numbers, one table per setting, the last evaluation of a run counting. (Last in this module: it
    adds evaluation runs to the shared study.)"""
    storage, _ = study
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{storage / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tiny").experiment_id  # the study's own experiment
    trials = {run.data.tags["rllib_shm.trial_id"]: run for run in
              client.search_runs([experiment], "tags.`rllib_shm.study` = 'tiny' and tags.kind = 'trial'")}
    checkpoints = {path.parents[1].name.removeprefix("trial_"): path
                   for path in sorted(storage.glob("tiny/trial_*/checkpoint_*/algo"))}
    assert set(checkpoints) == set(trials)
    first, second = sorted(checkpoints)[:2]

    def evaluate(trial, seed, name):
        output = tmp_path / f"{name}.json"
        assert main(["evaluate", str(checkpoints[trial]), "--episodes", "2", "--seed", str(seed),
                     "--output", str(output)]) == 0
        assert f"(child of training run {trials[trial].info.run_id})" in capsys.readouterr().out
        return json.loads(output.read_text())

    evaluate(first, 0, "first_earlier")
    payloads = {(first, 0): evaluate(first, 0, "first"), (second, 0): evaluate(second, 0, "second"),
                (first, 1): evaluate(first, 1, "first_seed1")}
    nested = client.search_runs([experiment], "tags.kind = 'evaluation'")
    assert len(nested) == 4 and all(r.data.tags["mlflow.parentRunId"] == r.data.tags["training_run_id"] for r in nested)

    result = make_report(ReportRequest(out=tmp_path / "report", study="tiny", storage=str(storage),
                                       log_to_mlflow=False))
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "## Evaluations" in markdown
    rows = list(csv.DictReader((tmp_path / "report" / "evaluations.csv").open()))
    assert len(rows) == 3  # the first trial's earlier seed-0 evaluation is superseded
    for row in rows:
        trial = row["trial"]
        seed = 0 if row["setting"].endswith("seed 0") else 1
        payload = payloads[(trial, seed)]
        assert float(row["return_mean"]) == pytest.approx(payload["return_mean"], rel=1e-9)
        assert float(row["success_rate"]) == pytest.approx(payload["success_rate"], rel=1e-9)
        assert row["training_run_id"] == trials[trial].info.run_id and row["episodes"] == "2"
    for seed in (0, 1):
        setting = f"training env · greedy · 2 episodes · seed {seed}"
        section = markdown.split(f"### {setting}")[1].split("##")[0]
        for variant in result.table.variants:
            cell = result.table.cells[(CUE, variant.label)]
            values = [payloads[(run.trial, seed)]["return_mean"] for run in cell.runs if (run.trial, seed) in payloads]
            if values:
                mean, std = np.mean(values), np.std(values)
                text = f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {std:.2f}"
                assert f"{text} ({len(values)}/{cell.n})" in section.replace("**", ""), section
