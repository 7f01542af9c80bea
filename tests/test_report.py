"""``rllib-shm report``: the table builder on synthetic runs (numbers, bold best, average row, the
paper's numbers marked, ablation variants, the expected grid, the threshold), then a tiny real
study (2 memories × 2 seeds on a grid of 4, 3 trials: incomplete) reported from its local SQLite
store and through an MLflow server, every number checked against MLflow itself."""

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import kill_session, start_mlflow_server, stop_mlflow_server, wait_for_mlflow_server
from rllib_shm.cli import main
from rllib_shm.reports.budget import budget
from rllib_shm.reports.collect import Collection, History, RunRecord
from rllib_shm.reports.curves import band, task_figure
from rllib_shm.reports.grid import expected_grid
from rllib_shm.reports.markdown import render
from rllib_shm.reports.report import ReportRequest, make_report
from rllib_shm.reports.table import build_table, steps_to_reach
from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import load_study
from rllib_shm.tracking import check_tracking_uri, curated_params

AUTOENCODE, REPEAT, CUE = ("rllib_shm/popgym-AutoencodeEasy-v0", "rllib_shm/popgym-RepeatPreviousEasy-v0",
                           "rllib_shm/CueRecall-D5-v0")
SIZES = {"shm": "128", "gru": "256", "ffm": "32", "mlp": "256"}


def record(task, kind, seed, mmer, *, status="FINISHED", returns=None, searched=None, params=None):
    returns = returns or (mmer,)
    params = params or {"env": task, "memory": kind, "memory.H": SIZES[kind], "seed": str(seed),
                        **({"ffm.C": "8"} if kind == "ffm" else {})}
    history = History(tuple(range(1, len(returns) + 1)), tuple(256.0 * i for i in range(1, len(returns) + 1)),
                      tuple(returns))
    return RunRecord(f"{task}/{kind}/{seed}/{status}", "run", status, params, {}, 0, 1000, searched or {}, mmer,
                     history)


def table_row(markdown: str, first: str, section: str = "## MMER") -> list[str]:
    text = markdown[markdown.index(section):]
    line = next(line for line in text.splitlines() if line.startswith(f"| {first} |"))
    return [cell.strip() for cell in line.strip("|").split(" | ")][1:]


def test_table_numbers_best_average_and_the_papers_numbers_marked():
    rng = np.random.default_rng(0)
    scores = {(task, kind, seed): float(rng.uniform(-1, 1)) for task in (AUTOENCODE, REPEAT, CUE)
              for kind in SIZES for seed in range(3)}
    runs = [record(*key, value) for key, value in scores.items()]
    runs.append(record(AUTOENCODE, "shm", 3, 5.0, status="RUNNING"))  # not finished: not averaged
    table = build_table(runs)
    assert [v.label for v in table.variants] == ["SHM H128", "GRU 256", "FFM 32×8", "MLP"]
    markdown = render(Collection("synthetic", "sqlite:///x.db", tuple(runs)), table, None,
                      budget(Collection("synthetic", "sqlite:///x.db", tuple(runs)), table), {})
    for task in table.tasks:
        means = {}
        row = table_row(markdown, task.removeprefix("rllib_shm/").removesuffix("-v0"))
        for variant, text in zip(table.variants, row, strict=True):
            values = [scores[(task, variant.memory_kind, seed)] for seed in range(3)]
            cell = table.cell(task, variant)
            assert (cell.mean, cell.std, cell.n) == (pytest.approx(np.mean(values)), pytest.approx(np.std(values)), 3)
            assert f"{100 * np.mean(values):.1f} ± {100 * np.std(values):.1f}" in text
            means[variant.label] = np.mean(values)
        best = max(means, key=means.get)
        assert table.best(task) == {best}
        assert [text.startswith("**") for text in row] == [label == best for label in means]
    cells = dict(zip([v.label for v in table.variants], table_row(markdown, "popgym-AutoencodeEasy"), strict=True))
    assert cells["SHM H128"].endswith("*paper: 49.5 ± 23.3*") and cells["FFM 32×8"].endswith("*paper: -32.7 ± 0.6*")
    assert "paper" not in cells["GRU 256"] + cells["MLP"]
    cells = dict(zip([v.label for v in table.variants], table_row(markdown, "popgym-RepeatPreviousEasy"), strict=True))
    assert cells["GRU 256"].endswith("*paper: 99.9 ± 0.0*") and cells["SHM H128"].endswith("*paper: 88.9 ± 11.1*")
    assert "paper" not in " ".join(table_row(markdown, "CueRecall-D5"))
    # the average row: mean over tasks of the cell means; ± over seeds of each seed's task average
    for variant, text in zip(table.variants, table_row(markdown, "average"), strict=True):
        per_seed = [np.mean([scores[(t, variant.memory_kind, s)] for t in table.tasks]) for s in range(3)]
        average = table.average(variant)
        assert average.mean == pytest.approx(np.mean(per_seed)) and average.std == pytest.approx(np.std(per_seed))
        bold = "**" if variant.label in table.best_average() else ""
        assert text.startswith(f"{bold}{100 * np.mean(per_seed):.1f} ± {100 * np.std(per_seed):.1f}")
        assert "(3/3 tasks)" in text
    assert "The paper's averages over all 12 POPGym tasks" in markdown and "SHM -5.1 ± 6.3" in markdown
    assert "MMER × 100" in markdown


def test_the_papers_twelve_task_average_sits_in_the_average_row_of_a_twelve_task_table():
    from rllib_shm.reports.paper import POPGYM_TASKS

    runs = [record(task, kind, 0, 0.1 * i) for i, task in enumerate(POPGYM_TASKS) for kind in ("shm", "mlp")]
    table = build_table(runs)
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs))
    markdown = render(collection, table, None, budget(collection, table), {})
    shm, mlp = table_row(markdown, "average")
    assert shm.endswith("*paper: -5.1 ± 6.3*") and "paper" not in mlp
    assert "averages over all 12 POPGym tasks" not in markdown


def test_an_ablation_gets_one_variant_per_combination_of_what_varies():
    runs = []
    for mode in ("random", "fixed"):
        for lr in (1e-3, 3e-4):
            for seed in (0, 1):
                searched = {"module.memory": {"kind": "shm", "mem_size": 64, "theta_mode": mode}, "algo.lr": lr,
                            "run.seed": seed, "env.id": CUE, "module.max_seq_len": 8}
                params = {"env": CUE, "memory": "shm", "memory.H": "64", "seed": str(seed), "lr": str(lr)}
                runs.append(record(CUE, "shm", seed, seed + lr, searched=searched, params=params))
    table = build_table(runs)
    assert [v.label for v in table.variants] == [  # ordered by value: numbers ascending, words alphabetically
        "SHM H64 · theta_mode=fixed, lr=0.0003", "SHM H64 · theta_mode=fixed, lr=0.001",
        "SHM H64 · theta_mode=random, lr=0.0003", "SHM H64 · theta_mode=random, lr=0.001"]
    for variant in table.variants:
        cell = table.cell(CUE, variant)
        assert sorted(cell.seeds) == ["0", "1"]  # seeds are averaged, never a variant
        lr = float(variant.label.rsplit("lr=", 1)[1])
        assert cell.mean == pytest.approx(0.5 + lr)


def test_many_variants_on_one_task_are_rows_of_both_tables():
    """One factor at a time on one task: a row per variant (a column each would be too wide to read)."""
    names = ("baseline", "h128", "lr-1e-3", "sine", "theta-fixed", "zz-gru")
    runs = []
    for i, name in enumerate(names):
        kind = "gru" if name == "zz-gru" else "shm"
        for seed in range(2):
            returns = (-0.5, 0.1 * i + 0.01 * seed)  # reaches 0.4 at the second iteration from i = 4 on
            runs.append(record(REPEAT, kind, seed, max(returns), returns=returns,
                               searched={"variant": name, "run.seed": seed}))
    table = build_table(runs)
    assert len(table.variants) == 6
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs))
    markdown = render(collection, table, None, budget(collection, table), {}, threshold=0.4)
    assert "| variant | popgym-RepeatPreviousEasy |" in markdown
    for i, variant in enumerate(table.variants):
        assert variant.label.endswith(f"variant={names[i]}")
        mmer, = table_row(markdown, variant.label)
        mean = 100 * np.mean([0.1 * i, 0.1 * i + 0.01])
        assert mmer.startswith(f"**{mean:.1f} ± 0.5**" if i == 5 else f"{mean:.1f} ± 0.5")
        assert mmer.endswith("*paper: 99.9 ± 0.0*" if names[i] == "zz-gru" else "*paper: 88.9 ± 11.1*")
        steps, = table_row(markdown, variant.label, section="## Env steps to")
        assert steps == ("512 ± 0 (2/2 reached)" if i >= 4 else "— (0/2 reached)")
    assert "| average |" not in markdown and "The average" not in markdown


def test_success_rates_are_reported_per_cell_and_drawn_below_the_returns(tmp_path):
    """Envs that report info["success"]: best and last success per run, mean ± std over seeds, env
    steps to the study's run.stop_success, a CSV column each, and a second panel in the figure."""
    from rllib_shm.reports.table import table_rows

    success = {("shm", 0): (0.3, 0.7, 0.96), ("shm", 1): (0.4, 0.9, 0.8), ("gru", 0): (0.3, 0.35, 0.4),
               ("gru", 1): (0.33, 0.3, 0.5)}
    runs = []
    for (kind, seed), rates in success.items():
        run = record(CUE, kind, seed, 5.0, returns=(1.0, 2.0, 3.0))
        runs.append(dataclasses.replace(run, history=dataclasses.replace(run.history, success=rates)))
    runs.append(record(CUE, "mlp", 0, 1.0, returns=(1.0, 1.0, 1.0)))  # an older run without success: "—"
    runs += [record(REPEAT, kind, 0, 0.5) for kind in ("shm", "gru")]  # a task without success: no success rows
    table = build_table(runs)
    assert table.has_success()
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs))
    markdown = render(collection, table, None, budget(collection, table), {}, success_level=0.95)
    labels = [v.label for v in table.variants]
    best = dict(zip(labels, table_row(markdown, "CueRecall-D5: best success", "## Success rate"), strict=True))
    last = dict(zip(labels, table_row(markdown, "CueRecall-D5: last success", "## Success rate"), strict=True))
    steps = dict(zip(labels, table_row(markdown, "CueRecall-D5: env steps to 95 %", "## Success rate"), strict=True))
    assert best["SHM H128"] == f"**{100 * np.mean([0.96, 0.9]):.0f} ± {100 * np.std([0.96, 0.9]):.0f} %**"
    assert best["GRU 256"] == f"{100 * np.mean([0.4, 0.5]):.0f} ± {100 * np.std([0.4, 0.5]):.0f} %"
    assert last["SHM H128"] == f"{100 * np.mean([0.96, 0.8]):.0f} ± {100 * np.std([0.96, 0.8]):.0f} %"
    assert best["MLP"] == last["MLP"] == "—"
    assert steps["SHM H128"] == "768 (1/2 reached)" and steps["GRU 256"] == "— (0/2 reached)"
    assert "popgym-RepeatPreviousEasy: best success" not in markdown and "**—**" not in markdown
    rows = {row["variant"]: row for row in table_rows(table, None, 0.95) if row["task"] == CUE}
    assert rows["SHM H128"]["success_best_mean"] == pytest.approx(0.93)
    assert rows["SHM H128"]["success_reached"] == 1 and rows["GRU 256"]["success_final_mean"] == pytest.approx(0.45)
    figure = task_figure(CUE, [(v.label, table.cell(CUE, v).runs) for v in table.variants])
    returns_axis, success_axis = figure.axes
    assert success_axis.get_ylabel() == "success rate"
    colours = [{line.get_label(): line.get_color() for line in axis.get_lines()} for axis in figure.axes]
    assert len(set(colours[0].values())) == len(labels)  # a colour per variant, the same in both panels
    assert {k: colours[0][k] for k in colours[1]} == colours[1] and len(colours[1]) == 2  # (MLP has no success)
    shm_line = next(line for line in success_axis.get_lines() if line.get_label().startswith("SHM H128"))
    assert list(shm_line.get_ydata()) == pytest.approx([0.35, 0.8, 0.88])
    figure.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    # without success (POPGym): no section, one panel
    plain = build_table([record(CUE, "gru", 0, 1.0)])
    assert not plain.has_success()
    assert "## Success rate" not in render(Collection("p", "sqlite:///x.db", ()), plain, None,
                                           budget(Collection("p", "sqlite:///x.db", ()), plain), {})
    assert len(task_figure(CUE, [("GRU", plain.cell(CUE, plain.variants[0]).runs)]).axes) == 1

def test_evaluations_one_table_per_setting_of_finished_runs_only():
    """Per setting, per cell: the evaluations' mean return over the evaluated finished runs (a killed
    run's evaluation is left out), (evaluated/finished), the best per task in bold, success where the
    env reports one; no section without evaluations."""
    from rllib_shm.reports.collect import Evaluation

    runs = [record(CUE, kind, seed, 1.0) for kind in ("shm", "gru") for seed in (0, 1)]
    runs.append(record(CUE, "gru", 2, 9.0, status="KILLED"))
    held_out, train = "env {'subset': 'eval'} · greedy · each task once (150 episodes) · seed 0", "training env"
    returns = {("shm", 0): 3.0, ("shm", 1): 5.0, ("gru", 0): 2.0, ("gru", 2): 99.0}
    evaluations = tuple(Evaluation(f"e{kind}{seed}", f"{CUE}/{kind}/{seed}/{'KILLED' if seed == 2 else 'FINISHED'}",
                                   held_out, "ckpt", 150, value, 0.1, 0.5 if kind == "shm" else 0.25, 1)
                        for (kind, seed), value in returns.items())
    evaluations += (Evaluation("t", f"{CUE}/gru/1/FINISHED", train, "ckpt", 20, -1.0, 0.0, float("nan"), 1),)
    table = build_table(runs)
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs), evaluations=evaluations)
    markdown = render(collection, table, None, budget(collection, table), {})
    labels = [v.label for v in table.variants]
    held = dict(zip(labels, table_row(markdown, "CueRecall-D5: return", f"### {held_out}"), strict=True))
    assert held == {"SHM H128": "**4.00 ± 1.00** (2/2)", "GRU 256": "2.00 (1/2)"}
    success = dict(zip(labels, table_row(markdown, "CueRecall-D5: success", f"### {held_out}"), strict=True))
    assert success == {"SHM H128": "50 ± 0 %", "GRU 256": "25 %"}
    other = markdown.split(f"### {train}")[1]
    assert table_row(other, "CueRecall-D5: return", "|") == ["", "**-1.00** (1/2)"]
    assert "CueRecall-D5: success" not in other.split("##")[0]  # no success reported in that setting
    assert "## Evaluations" not in render(Collection("s", "sqlite:///x.db", tuple(runs)), table, None,
                                          budget(collection, table), {})


def write_study(path: Path, **tune) -> Path:
    study = {"env": {"id": {"choice": [CUE, "rllib_shm/CueRecall-D30-v0"]}},
             "module": {"memory": {"choice": [{"kind": "shm", "mem_size": 8}, {"kind": "gru", "mem_size": 8}]}},
             "run": {"seed": {"choice": [0, 1, 2]}, "stop_iters": 2},
             "tune": {"name": "grid", "num_samples": 12, "sampler": "grid", **tune}}
    path.write_text(yaml.safe_dump(study))
    return path


def test_missing_trials_per_cell_against_the_expected_grid(tmp_path):
    study = load_study(write_study(tmp_path / "study.yaml"))
    grid = expected_grid(study)
    assert len(grid.points) == 12 and grid.num_samples == 12

    def trial(memory, seed, status="FINISHED"):
        searched = {"env.id": CUE, "module.memory": memory, "run.seed": seed}
        params = {k: str(v) for k, v in curated_params(trial_config(study.base, searched)).items()}
        name = f"{memory['kind']}{seed}{status}"
        return RunRecord(name, name, status, params, {}, 0, 1, searched, 0.5, History((1,), (256.0,), (0.5,)))

    shm, gru = {"kind": "shm", "mem_size": 8}, {"kind": "gru", "mem_size": 8}
    runs = [trial(shm, 0), trial(shm, 1), trial(shm, 2), trial(gru, 0), trial(gru, 1, "FAILED")]
    table = build_table(runs, grid.points, study.space["env.id"][1])
    counts = {(task, label): (len(c.runs), c.expected, c.missing, len(c.unfinished))
              for (task, label), c in table.cells.items()}
    d30 = "rllib_shm/CueRecall-D30-v0"
    assert counts == {(CUE, "SHM H8"): (3, 3, 0, 0), (CUE, "GRU 8"): (1, 3, 2, 1),
                      (d30, "SHM H8"): (0, 3, 3, 0), (d30, "GRU 8"): (0, 3, 3, 0)}
    collection = Collection("study `grid`", "sqlite:///x.db", tuple(runs))
    markdown = render(collection, table, grid, budget(collection, table), {})
    assert "**Incomplete**: 1 run(s) not finished; 4 of the study's 12 trials" in markdown
    assert "| CueRecall-D5 | GRU 8 | 1 | 3 | 2 | 0 / 1 / 0 |" in markdown
    assert "| CueRecall-D30 | SHM H8 | 0 | 3 | 3 | 0 / 0 / 0 |" in markdown
    assert table_row(markdown, "CueRecall-D30") == ["— (0/3)", "— (0/3)"]
    assert "| gru1FAILED | CueRecall-D5 | GRU 8 | 1 | FAILED |" in markdown  # the failed trial is listed

    continuous = load_study(tmp_path / "study.yaml", ["algo.lr={loguniform: [1.0e-4, 1.0e-2]}"], sampler="tpe")
    assert expected_grid(continuous).points == () and "continuous in ['algo.lr']" in expected_grid(continuous).reason


def test_env_steps_to_a_threshold():
    runs = [record(CUE, "gru", 0, 0.9, returns=(0.1, 0.85, 0.9)), record(CUE, "gru", 1, 0.9, returns=(0.9, 0.2, 0.3)),
            record(CUE, "gru", 2, 0.5, returns=(math.nan, 0.5))]
    assert [steps_to_reach(run, 0.8) for run in runs] == [512.0, 256.0, None]
    table = build_table(runs)
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs))
    markdown = render(collection, table, None, budget(collection, table), {}, threshold=0.8)
    assert table_row(markdown, "CueRecall-D5", "## Env steps to a mean return of 0.8") == ["384 ± 128 (2/3 reached)"]


def test_curves_are_dashed_where_fewer_runs_report():
    """A seed that stopped early (on success, by ASHA, or still running) leaves a survivor's mean:
    solid while every run reports, dashed after."""
    runs = [record(CUE, "gru", 0, 0.9, returns=(0.1, 0.5, 0.9, 1.0)), record(CUE, "gru", 1, 0.9, returns=(0.3, 0.7))]
    steps, mean, _, count = band(runs)
    assert steps.tolist() == [256.0, 512.0, 768.0, 1024.0] and count.tolist() == [2, 2, 1, 1]
    assert mean.tolist() == pytest.approx([0.2, 0.6, 0.9, 1.0])
    lines = task_figure(CUE, [("gru", runs)]).axes[0].get_lines()
    solid = [line for line in lines if line.get_linestyle() == "-"]
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(solid) == 1 and np.isfinite(solid[0].get_ydata()).tolist() == [True, True, False, False]
    assert len(dashed) == 1 and dashed[0].get_label() == "dashed: fewer runs report"
    everyone = [record(CUE, "gru", seed, 0.9, returns=(0.1, 0.5)) for seed in range(2)]
    assert [line.get_linestyle() for line in task_figure(CUE, [("gru", everyone)]).axes[0].get_lines()] == ["-"]


def test_a_report_never_imports_ray():
    code = "import sys, rllib_shm.reports.report, rllib_shm.cli.report; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


# --- a tiny real study -------------------------------------------------------------------------------
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
    experiment = client.get_experiment_by_name("rllib-shm")
    runs = client.search_runs([experiment.experiment_id], "tags.`rllib_shm.study` = 'tiny' and tags.kind = 'trial'")
    parents = client.search_runs([experiment.experiment_id], "tags.`rllib_shm.study` = 'tiny' and tags.kind = 'study'")
    truth = {}
    for run in runs:
        assert run.info.status == "FINISHED"
        histories = {key: {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
                     for key in ("episode_return_mean", "env_steps", "success_rate")}
        truth.setdefault((run.data.params["env"], run.data.params["memory"]), []).append(
            (run.data.metrics["episode_return_max_mean"], histories))
    return truth, parents[0].info.run_id, [run.info.run_id for run in runs]


def first_reached(histories, threshold):
    returns, steps = histories["episode_return_mean"], histories["env_steps"]
    return next((steps[i] for i in sorted(returns) if returns[i] >= threshold), None)


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
        best = [max(h["success_rate"].values()) for _, h in runs]
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
    for name, source in (("experiment", ["--experiment", "rllib-shm"]), ("runs", ["--runs", *run_ids])):
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
    experiment = client.get_experiment_by_name("rllib-shm").experiment_id
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
