"""``rllib-shm report A B C``: several studies as one report (the memory-length benchmark's families
are separate studies). Two synthetic studies are logged to a SQLite store the way ``rllib-shm tune``
logs them (a parent run per study, trial runs with curated params and per-iteration metrics at
step = env steps); the combined report holds both families in one table and one two-panel figure,
counts every run once, sums the studies' wall times, and refuses what it cannot do before it writes."""

import mlflow
import pytest
from PIL import Image

from rllib_shm.cli import main
from rllib_shm.reports.collect import Collection, merged
from rllib_shm.reports.report import ReportRequest, make_report, solved_level
from rllib_shm.studies.study import load_study
from rllib_shm.tracking import STUDY_TAG, check_tracking_uri

CUE = ("rllib_shm/CueRecall-D10-v0", "rllib_shm/CueRecall-D100-v0")
FIRST = ("rllib_shm/popgym-RepeatFirstEasy-v0", "rllib_shm/popgym-RepeatFirstMedium-v0")
KINDS = {"shm": "64", "gru": "256"}
STEP = 4096


def log_study(client, name, tasks, success, start_ms, wall_ms):
    """A finished study: its parent run (wall_ms long) and one trial run per task × memory × seed 0/1.
    SHM reaches the top on every task at iteration 2 + seed; the GRU only on the first task."""
    experiment = client.create_experiment(name)
    parent = client.create_run(experiment, start_time=start_ms, run_name=name,
                               tags={STUDY_TAG: name, "kind": "study"})
    client.set_terminated(parent.info.run_id, "FINISHED", end_time=start_ms + wall_ms)
    for task in tasks:
        for kind, size in KINDS.items():
            for seed in (0, 1):
                run = client.create_run(experiment, start_time=start_ms, run_name=f"{task} {kind} s{seed}",
                                        tags={STUDY_TAG: name, "kind": "trial", "mlflow.parentRunId":
                                              parent.info.run_id})
                run_id = run.info.run_id
                for key, value in {"env.id": task, "module.memory.kind": kind, "module.memory.mem_size": size,
                                   "run.seed": str(seed)}.items():
                    client.log_param(run_id, key, value)
                learns = kind == "shm" or task == tasks[0]
                best = -1.0
                for iteration in range(1, 7):
                    steps = iteration * STEP
                    level = 1.0 if learns and iteration >= 2 + seed else 0.0
                    value = level if success else 2 * level - 1  # a return in [−1, 1]
                    best = max(best, value)
                    metrics = {"iteration": iteration, "env_steps": steps, "episode_return_mean": value,
                               "episode_return_max_mean": best, "window_episodes": 100}
                    if success:
                        metrics["success_rate"] = level
                    for key, number in metrics.items():
                        client.log_metric(run_id, key, number, step=steps)
                client.set_terminated(run_id, "FINISHED", end_time=start_ms + wall_ms // 2)
    return parent.info.run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Storage with the two studies in its mlflow.db: `cue` (success rates) ran 1 h, `first` (returns
    only) 2 h, a day later."""
    storage = tmp_path_factory.mktemp("several") / "tune"
    storage.mkdir()
    uri = f"sqlite:///{storage / 'mlflow.db'}"
    check_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    day, hour = 86_400_000, 3_600_000
    parents = {"cue": log_study(client, "cue", CUE, True, 1_700_000_000_000, hour),
               "first": log_study(client, "first", FIRST, False, 1_700_000_000_000 + day, 2 * hour)}
    return storage, uri, parents


def test_several_studies_make_one_report_with_one_figure_panel_per_family(store, tmp_path, capsys):
    storage, uri, parents = store
    out = tmp_path / "benchmark"
    result = make_report(ReportRequest(out=out, studies=("cue", "first"), storage=str(storage), threshold=0.9))
    table = result.table
    assert list(table.tasks) == sorted(CUE) + sorted(FIRST)  # study by study
    assert len(result.collection.runs) == 16 and result.collection.parent is None
    assert {p.run_id for p in result.collection.parents} == set(parents.values())
    assert [v.label for v in table.variants] == ["SHM H64", "GRU 256"]
    markdown = (out / "report.md").read_text()
    assert markdown.startswith("# Results: studies `cue` and `first`")
    assert all(run_id in markdown for run_id in parents.values())
    # both families in the memory-length section: CueRecall by success (95 %), RepeatFirst by the return 0.9
    assert "### CueRecall: env steps to a success rate of 95 %" in markdown
    assert "### RepeatFirst: env steps to a mean return of 0.9" in markdown
    # SHM seed 0 reaches the top at iteration 2, seed 1 at iteration 3: mean 10,240 ± 2,048 on every task
    section = markdown[markdown.index("### RepeatFirst"):]
    medium = next(line for line in section.splitlines() if line.startswith("| popgym-RepeatFirstMedium"))
    assert "10,240 ± 2,048 (2/2)" in medium and "not reached (0/2, 24,576 steps)" in medium
    # one figure, one panel per family (and the shared legend): wider than two one-family figures
    with Image.open(out / "memory_length.png") as image:
        assert image.size[0] > 2 * 550
    # wall time: the two parents' 1 h + 2 h, not the day and more between the first start and the last end
    assert "wall time 3 h 00 min (the 2 studies' parent runs, each start to end, summed)" in markdown
    assert "not logged to MLflow" in capsys.readouterr().out
    client = mlflow.MlflowClient(tracking_uri=uri)
    assert not any(client.list_artifacts(run_id) for run_id in parents.values())


def test_the_cli_takes_several_study_names(store, tmp_path, capsys):
    storage, _, _ = store
    out = tmp_path / "cli"
    assert main(["report", "cue", "first", "--storage", str(storage), "--out", str(out), "--threshold", "0.9",
                 "--no-mlflow-log"]) == 0
    assert (out / "memory_length.png").is_file() and (out / "table.csv").is_file()
    assert "studies `cue` and `first`" in (out / "report.md").read_text()


@pytest.mark.parametrize("studies, out, message", [
    (("cue", "cue"), "x", "given more than once"),
    (("cue", "first"), None, "pass --out DIR"),
    (("cue", "a/b"), "x", "'a/b'"),
])
def test_bad_requests_are_refused_before_anything_is_written(store, tmp_path, studies, out, message):
    storage, _, _ = store
    target = tmp_path / out if out else None
    with pytest.raises(ValueError, match=message):
        make_report(ReportRequest(out=target, studies=studies, storage=str(storage)))
    assert target is None or not target.exists()


def test_an_unknown_study_among_several_is_named(store, tmp_path):
    storage, _, _ = store
    with pytest.raises(ValueError, match="unknown study 'nope'.*studies there: \\['cue', 'first'\\]"):
        make_report(ReportRequest(out=tmp_path / "x", studies=("cue", "nope"), storage=str(storage)))
    assert not (tmp_path / "x" / "report.md").exists()


def test_studies_with_different_solved_levels_are_refused(tmp_path):
    def study(name, level):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"env: {{id: {CUE[0]}}}\nrun: {{stop_success: {level}, seed: {{choice: [0, 1]}}}}\n"
                        f"tune: {{name: {name}}}\n")
        return load_study(path)

    assert solved_level([study("a", 0.95), None, study("b", 0.95)], ("a", "c", "b")) == 0.95
    with pytest.raises(ValueError, match="different success rates.*'a': 0.95.*'b': 0.9"):
        solved_level([study("a", 0.95), study("b", 0.9)], ("a", "b"))


def test_studies_in_different_stores_are_refused():
    with pytest.raises(ValueError, match="different MLflow stores"):
        merged([Collection("study `a`", "sqlite:///a.db", ()), Collection("study `b`", "sqlite:///b.db", ())],
               ("a", "b"))
