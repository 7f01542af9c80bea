"""``rllib-shm report``: the table builder on synthetic runs (numbers, bold best, average row, the
paper's numbers marked, ablation variants, success rates, evaluations, the expected grid, the
threshold, the curves). The report of a tiny real study, checked against MLflow itself, is in
test_report_study.py."""

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rllib_shm.reports.budget import budget
from rllib_shm.reports.collect import Collection, History, RunRecord
from rllib_shm.reports.curves import band, task_figure
from rllib_shm.reports.grid import expected_grid
from rllib_shm.reports.markdown import render
from rllib_shm.reports.table import build_table, steps_to_reach
from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import load_study
from rllib_shm.tracking import curated_params

AUTOENCODE, REPEAT, CUE = ("rllib_shm/popgym-AutoencodeEasy-v0", "rllib_shm/popgym-RepeatPreviousEasy-v0",
                           "rllib_shm/CueRecall-D5-v0")
SIZES = {"shm": "128", "gru": "256", "ffm": "32", "mlp": "256"}


def record(task, kind, seed, mmer, *, status="FINISHED", returns=None, searched=None, params=None):
    returns = returns or (mmer,)
    params = params or {"env.id": task, "module.memory.kind": kind, "module.memory.mem_size": SIZES[kind],
                        "run.seed": str(seed), **({"module.memory.context_size": "8"} if kind == "ffm" else {})}
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
                params = {"env.id": CUE, "module.memory.kind": "shm", "module.memory.mem_size": "64",
                          "run.seed": str(seed), "algo.lr": str(lr)}
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
        assert variant.label == ("GRU 256 · zz-gru" if names[i] == "zz-gru" else f"SHM H128 · {names[i]}")
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


def test_evaluations_show_the_share_of_each_outcome_the_env_names():
    """Where evaluations carry outcome shares (Key-to-Door: opened_door / key_unused / no_key), one row
    per outcome, most frequent first, mean ± std over seeds; an outcome an evaluation never saw counts 0."""
    from rllib_shm.reports.collect import Evaluation
    from rllib_shm.reports.report import evaluation_rows

    runs = [record(CUE, kind, seed, 1.0) for kind in ("shm", "gru") for seed in (0, 1)]
    setting = "training env · greedy · 100 episodes · seed 0"
    shares = {("shm", 0): (("key_unused", 0.2), ("no_key", 0.2), ("opened_door", 0.6)),
              ("shm", 1): (("no_key", 0.6), ("opened_door", 0.4)),
              ("gru", 0): (("no_key", 1.0),), ("gru", 1): (("key_unused", 0.5), ("no_key", 0.5))}
    evaluations = tuple(Evaluation(f"e{kind}{seed}", f"{CUE}/{kind}/{seed}/FINISHED", setting, "ckpt", 100, 1.0, 0.0,
                                   dict(found).get("opened_door", 0.0), 1, found)
                        for (kind, seed), found in shares.items())
    table = build_table(runs)
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs), evaluations=evaluations)
    markdown = render(collection, table, None, budget(collection, table), {})
    section = markdown.split(f"### {setting}")[1].split("\n## ")[0]
    labels = [v.label for v in table.variants]
    rows = [line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| CueRecall-D5")]
    assert rows == ["CueRecall-D5: return", "CueRecall-D5: success", "CueRecall-D5: no_key",
                    "CueRecall-D5: opened_door", "CueRecall-D5: key_unused"]  # the most frequent first
    opened = dict(zip(labels, table_row(section, "CueRecall-D5: opened_door", "|"), strict=True))
    assert opened == {"SHM H128": "50 ± 10 %", "GRU 256": "0 ± 0 %"}
    unused = dict(zip(labels, table_row(section, "CueRecall-D5: key_unused", "|"), strict=True))
    assert unused == {"SHM H128": "10 ± 10 %", "GRU 256": "25 ± 25 %"}
    csv = {row["evaluation_run_id"]: row["outcomes"] for row in evaluation_rows(table, evaluations)}
    assert csv["eshm0"] == "key_unused 0.2; no_key 0.2; opened_door 0.6" and csv["egru0"] == "no_key 1"


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


@pytest.mark.parametrize("windowed", [False, True], ids=["logged-before-the-window", "logged-windowed"])
def test_runs_logged_with_one_iteration_means_are_read_over_100_episodes(tmp_path, windowed):
    """A CueRecall-D1000-like run: 8 episodes per iteration, a lucky 8 of 8 first. Logged before the
    loop's window (no ``window_episodes``), its means and MMER are recomputed over the last 100
    episodes; a run that logged the window is read as logged."""
    import mlflow

    from rllib_shm.reports.collect import RunRecord, with_metrics

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("x")).info.run_id
    rates = [1.0] + [0.5] * 14
    for number, rate in enumerate(rates, 1):
        metrics = {"iteration": number, "env_steps": 8016 * number, "episodes": 8 * number, "success_rate": rate,
                   "episode_return_mean": 2 * rate - 1, "episode_return_max_mean": 1.0}
        if windowed:
            metrics["window_episodes"] = min(8 * number, 100)
        for key, value in metrics.items():
            client.log_metric(run_id, key, value, step=8016 * number)
    record = with_metrics(client, RunRecord(run_id, "r", "FINISHED", {}, {}, 0, 1))
    if windowed:
        assert record.history.success == tuple(rates) and record.mmer == 1.0
    else:
        assert record.history.success[0] == 1.0 and record.history.success[1] == pytest.approx(0.75)
        assert record.history.success[-1] == pytest.approx(0.5)  # 100 episodes, none of the lucky 8 left
        assert record.mmer == pytest.approx(0.04)  # the first full window (4 of the lucky 8 left) replaced 1.0
        assert steps_to_reach(record, 0.95, success=True) is None  # the lucky 8 of 8 never filled a window


def test_a_variant_that_names_its_memory_is_its_own_label():
    """The memory-length studies' variants ("shm-H64-fixed", "rllib-lstm-256", "ffm-32x8") say their memory:
    the legend shows each name once. Variants that do not ("baseline", "signed") keep the memory in front."""
    searched = {"shm-H64-fixed": "shm", "rllib-lstm-256": "lstm", "ffm-32x8": "ffm", "mlp": "mlp", "signed": "shm"}
    runs = [record(REPEAT, kind, 0, 0.0, searched={"variant": name, "run.seed": 0},
                   params={"env.id": REPEAT, "module.memory.kind": kind, "module.memory.mem_size": size,
                           "run.seed": "0", **({"module.memory.context_size": "8"} if kind == "ffm" else {})})
            for (name, kind), size in zip(searched.items(), ("64", "256", "32", "256", "64"), strict=True)]
    assert sorted(v.label for v in build_table(runs).variants) == sorted(
        ["shm-H64-fixed", "rllib-lstm-256", "ffm-32x8", "mlp", "SHM H64 · signed"])


def test_a_critic_memory_comparison_is_labelled_by_both_memories_and_ranked_by_the_critics():
    """The paper's meta-RL arms (SAC, one GRU actor, the critics' memories compared): the label names
    the actor and the critic, an arm named by the critic's kind is said by it, and the variant's
    memory is the critic's (the table's "memory" column)."""
    critics = {"shm": "{'kind': 'shm', 'mem_size': 24, 'theta_mode': 'random', 'context_size': 8}",
               "gru": "{'kind': 'gru', 'mem_size': 128, 'theta_mode': 'random', 'context_size': 8}",
               "shm-fixed": "{'kind': 'shm', 'mem_size': 24, 'theta_mode': 'fixed', 'context_size': 8}"}
    runs = [record(REPEAT, "gru", seed, 0.0, searched={"variant": name, "run.seed": seed},
                   params={"env.id": REPEAT, "module.memory.kind": "gru", "module.memory.mem_size": "128",
                           "run.seed": str(seed), "algo.sac.critic_memory": critic})
            for name, critic in critics.items() for seed in (0, 1)]
    variants = build_table(runs).variants
    assert [(v.label, v.memory_kind) for v in variants] == [
        ("GRU 128 · critic SHM H24", "shm"), ("GRU 128 · critic SHM H24 · shm-fixed", "shm"),
        ("GRU 128 · critic GRU 128", "gru")]
    # a SAC run whose critic runs the actor's memory (the param logged as None) is labelled as before
    plain = [record(REPEAT, "gru", 0, 0.0, searched={"variant": "gru", "run.seed": 0},
                    params={"env.id": REPEAT, "module.memory.kind": "gru", "module.memory.mem_size": "128",
                            "run.seed": "0", "algo.sac.critic_memory": "None"})]
    assert [v.label for v in build_table(plain).variants] == ["GRU 128"]


def test_a_share_below_ten_percent_keeps_a_decimal_so_a_rare_one_does_not_read_zero():
    from rllib_shm.reports.markdown import _percent

    # one rewarded episode of 100 on one seed of three (the Wind SAC study's SHM arm)
    assert _percent([0.0, 0.0, 0.01]) == "0.3 ± 0.5 %"
    assert _percent([0.004]) == "0.4 %"
    assert _percent([0.009, 0.011, 0.013]) == "1.1 ± 0.2 %"  # below 10 %: one decimal
    assert _percent([0.0, 0.0]) == "0 ± 0 %" and _percent([0.25, 0.35]) == "30 ± 5 %"  # whole percent otherwise
    assert _percent([]) == "—"
