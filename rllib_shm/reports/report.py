"""``make_report``: check the request, read the runs from MLflow, build the table and figures, write
``report.md``, ``table.csv``, ``curves_<task>.png``, where tasks have a memory length
``memory_length.png`` (shown first: ``memory_length.py``) and, where trained runs were evaluated,
``evaluations.csv`` to the output directory, and log them as artifacts (under ``report/``) of the
study's MLflow parent run. Several studies make one report (a benchmark whose families are separate
studies, e.g. the memory-length benchmark's three): their runs in one table and one memory-length
figure, their budgets summed; it needs ``--out`` and is logged to no parent run.

Every input is checked before anything is read or written: the threshold, the output directory
(existing report files are refused unless ``force``; other files there are never touched), the
study (its ``<storage>/<name>/study.yaml`` or its MLflow parent run), the tracking store, the
experiment or the run ids. The files are drawn in a scratch directory inside ``--out`` and moved
into place together (``rllib_shm.files``; with ``force`` each replaces its old version in one step);
a second report into the same ``--out`` while one is being written is refused.
"""

from __future__ import annotations

import csv
import math
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rllib_shm.files import claim_directory, publish, scratch_directory
from rllib_shm.reports.budget import budget
from rllib_shm.reports.collect import (
    Collection,
    collect_experiment,
    collect_run_ids,
    collect_study,
    merged,
    study_names,
)
from rllib_shm.reports.curves import figure_name, task_figure
from rllib_shm.reports.grid import Grid, expected_grid
from rllib_shm.reports.grouping import TASK_PATH
from rllib_shm.reports.markdown import evaluated, render
from rllib_shm.reports.memory_length import FIGURE as MEMORY_FIGURE
from rllib_shm.reports.memory_length import memory_length_figure, memory_length_section
from rllib_shm.reports.table import Table, build_table, table_rows
from rllib_shm.runs.outputs import check_new_files_in
from rllib_shm.studies.study import Study, first_config, load_study
from rllib_shm.tracking import check_tracking_uri, experiment_name, find_study_parent

MARKDOWN, CSV, FIGURES, EVALUATIONS = "report.md", "table.csv", "curves_*.png", "evaluations.csv"
ARTIFACT_DIR = "report"  # in the parent run's artifacts


@dataclass(frozen=True)
class ReportRequest:
    out: Path | None = None  # default: ``default_out`` (<storage>/<study>/report, results/reports/<experiment>)
    study: str | None = None  # a study name, under ``storage``
    studies: tuple[str, ...] = ()  # or several studies as one report (a benchmark's families); needs ``out``
    experiment: str | None = None  # or every training run of an MLflow experiment
    run_ids: tuple[str, ...] = ()  # or these runs
    storage: str = "results/tune"  # Tune storage (study.yaml; the default SQLite store beside it)
    mlflow_uri: str | None = None  # default: $MLFLOW_TRACKING_URI, then sqlite:///<storage>/mlflow.db
    threshold: float | None = None  # env steps until the mean return first reaches this
    force: bool = False  # overwrite existing report files
    log_to_mlflow: bool = True


@dataclass(frozen=True)
class ReportResult:
    files: tuple[Path, ...]
    table: Table
    collection: Collection
    grid: Grid | None
    logged_to: str | None  # the parent run that holds the artifacts


def threshold_value(text: str) -> float:
    """``--threshold``'s text as a finite number, or a ValueError naming it."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"--threshold {text!r}: expected a finite number (a mean return, e.g. 0.8)")
    return value


REPORTS = Path("results/reports")  # an experiment's report goes to <REPORTS>/<experiment> by default


def default_out(request: ReportRequest) -> Path:
    """``--out``, else ``<storage>/<study>/report`` for a study (beside its Tune directory) and
    ``results/reports/<experiment>`` for an experiment; runs given by id need ``--out``."""
    if request.out is not None:
        return Path(request.out)
    if request.studies:
        raise ValueError("report: pass --out DIR (there is no default directory for a report of several studies)")
    if request.study and "://" not in request.storage:
        return Path(request.storage) / request.study / "report"
    if request.experiment:
        return REPORTS / re.sub(r"[^A-Za-z0-9_.-]", "_", request.experiment)
    raise ValueError("report: pass --out DIR (there is no default directory for "
                     + ("a study on remote storage)" if request.study else "runs given by id)"))


def check_request(request: ReportRequest) -> None:
    sources = [bool(request.study or request.studies), bool(request.experiment), bool(request.run_ids)]
    if sum(sources) != 1 or (request.study and request.studies):
        raise ValueError("report: give exactly one of a study name, --experiment NAME or --runs ID ... "
                         "(several study names make one report)")
    for name in (request.study, *request.studies):
        if name is not None and ("/" in name or name in (".", "..", "")):
            raise ValueError(f"study name {name!r}: expected a study's tune.name (no '/'); its directory is "
                             "found under --storage")
    repeated = sorted({name for name in request.studies if request.studies.count(name) > 1})
    if repeated:
        raise ValueError(f"study names {repeated} given more than once: each study is read once")
    if request.threshold is not None and not (isinstance(request.threshold, int | float)
                                              and math.isfinite(request.threshold)):
        raise ValueError(f"--threshold {request.threshold!r}: expected a finite number (a mean return, e.g. 0.8)")
    out = default_out(request)
    check_no_report(out, request.force)
    check_new_files_in(out, (), "--out")


def check_no_report(out: Path, force: bool) -> None:
    """Unless ``force``: ValueError if ``out`` holds report files."""
    if out.is_dir() and not force:
        taken = [p.name for p in (out / MARKDOWN, out / CSV, out / EVALUATIONS, out / MEMORY_FIGURE,
                                  *sorted(out.glob(FIGURES)))
                 if p.exists()]
        if taken:
            raise ValueError(f"--out {str(out)!r} already holds report files {taken}: pass --force to overwrite "
                             "them (other files there are never touched), or choose another directory")


def _study_file(request: ReportRequest) -> Path:
    return Path(request.storage) / request.study / "study.yaml"


def tracking_uri(request: ReportRequest, study: Study | None) -> str:
    """As ``rllib-shm tune`` resolves it: --mlflow-uri > $MLFLOW_TRACKING_URI > the study's run.mlflow_uri >
    sqlite:///<storage>/mlflow.db (which must exist: a report never creates a store)."""
    uri = request.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or (
        first_config(study).run.mlflow_uri if study else None)
    if not uri:
        database = Path(request.storage).resolve() / "mlflow.db"
        if not database.is_file():
            raise ValueError(f"no MLflow store at {str(database)!r} (the SQLite file `rllib-shm tune` writes beside "
                             "its storage): pass --storage DIR or --mlflow-uri URI")
        uri = f"sqlite:///{database}"
    try:  # a file that is not an MLflow store is refused untouched; a read-only one unless nothing is logged
        check_tracking_uri(uri, create=False, write=request.log_to_mlflow)
    except ValueError as error:
        raise ValueError(f"{error} (pass --no-mlflow-log)" if "read-only" in str(error) else str(error)) from None
    return uri


def _study_from_artifact(client, run_id: str) -> Study | None:
    """The study file the parent run keeps as an artifact (logged when the study ended), if any."""
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = client.download_artifacts(run_id, "study.yaml", directory)
        except Exception:  # noqa: BLE001 - absent (a study still running) or unreadable: no grid
            return None
        return load_study(path)


def collect_studies(request: ReportRequest, log: Callable[[str], None]) -> tuple[Collection, list[Study | None]]:
    """Each of ``request.studies`` as ``collect`` reads one study, merged into one collection."""
    found = [collect(replace(request, study=name, studies=()), log) for name in request.studies]
    return merged([collection for collection, _ in found], request.studies), [study for _, study in found]


def collect(request: ReportRequest, log: Callable[[str], None]) -> tuple[Collection, Study | None]:
    import mlflow

    study_file = _study_file(request) if request.study else None
    study = load_study(study_file, storage_path=request.storage) if study_file and study_file.is_file() else None
    uri = tracking_uri(request, study)
    client = mlflow.MlflowClient(tracking_uri=uri)
    if request.experiment or request.run_ids:
        collection = (collect_experiment(client, request.experiment, log) if request.experiment
                      else collect_run_ids(client, list(request.run_ids), log))
        parent = collection.parent
        return collection, _study_from_artifact(client, parent.run_id) if parent else None
    experiment = client.get_experiment_by_name(experiment_name(first_config(study), request.study)) if study else None
    parent = find_study_parent(client, request.study, [experiment.experiment_id]) if experiment else None
    if parent is None:  # a study run before studies had their own experiments, or with no study file here
        parent = find_study_parent(client, request.study)
    if parent is None:
        storage = Path(request.storage)
        local = sorted(p.parent.name for p in storage.glob("*/study.yaml")) if storage.is_dir() else []
        if study is None:
            raise ValueError(f"unknown study {request.study!r}: no {str(study_file)!r} (studies under "
                             f"{str(storage)!r}: {local}) and no MLflow parent run of that name at {uri} (studies "
                             f"there: {study_names(client)})")
        raise ValueError(f"study {request.study!r} has no MLflow parent run at {uri} (studies there: "
                         f"{study_names(client)}); pass the --mlflow-uri it was run with")
    if study is None:
        study = _study_from_artifact(client, parent.info.run_id)
    log(f"study {request.study}: MLflow parent run {parent.info.run_id} at {uri}")
    return collect_study(client, parent, study.space if study else None, log), study


def write_figures(table: Table, out: Path, threshold: float | None, log: Callable[[str], None]) -> dict[str, Path]:
    drawn = {task: [(v.label, cell.runs) for v in table.variants if (cell := table.cell(task, v)) and cell.runs]
             for task in table.tasks}
    drawn = {task: series for task, series in drawn.items() if series}  # tasks with a finished run
    log(f"drawing {len(drawn)} learning-curve figure(s)")
    figures = {}
    for task, series in drawn.items():
        path = out / figure_name(task)
        task_figure(task, series, threshold).savefig(path)
        figures[task] = path
    return figures


def write_rows(path: Path, rows: list[dict]) -> None:
    """``rows`` as a CSV file with a header (the first row's keys)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["task"])
        writer.writeheader()
        writer.writerows(rows)


def write_csv(table: Table, path: Path, threshold: float | None, success_level: float | None = None) -> None:
    write_rows(path, table_rows(table, threshold, success_level))


def evaluation_rows(table: Table, evaluations) -> list[dict]:
    """One row per evaluation of a finished run that the report counts (``markdown.evaluated``)."""
    rows = []
    for setting, cells in evaluated(table, evaluations).items():
        for (task, label), found in cells.items():
            runs = {run.run_id: run for run in table.cells[(task, label)].runs}
            for evaluation in found:
                run = runs[evaluation.training_run_id]
                rows.append({"setting": setting, "task": task, "variant": label, "seed": run.seed, "trial": run.trial,
                             "training_run_id": run.run_id, "checkpoint": evaluation.checkpoint,
                             "episodes": evaluation.episodes, "return_mean": evaluation.return_mean,
                             "return_std": evaluation.return_std, "success_rate": evaluation.success_rate,
                             "outcomes": "; ".join(f"{name} {share:g}" for name, share in evaluation.outcomes),
                             "evaluation_run_id": evaluation.run_id})
    return rows


def merged_grid(grids: list[Grid | None]) -> Grid | None:
    """Several studies' expected grids as one: None unless every study has one; without points where
    one of them has none (with the reasons)."""
    if not grids or any(grid is None for grid in grids):
        return None
    total = sum(grid.num_samples for grid in grids)
    if any(not grid.points for grid in grids):
        return Grid((), total, "; ".join(grid.reason for grid in grids if grid.reason))
    return Grid(tuple(point for grid in grids for point in grid.points), total)


def task_order(studies: list[Study | None], collection: Collection) -> list[str]:
    """The tasks in the order the studies list them (``env.id``'s choices), study after study."""
    spaces = [study.space for study in studies if study] or [collection.space or {}]
    return [task for space in spaces if space.get(TASK_PATH, ("",))[0] == "choice" for task in space[TASK_PATH][1]]


def solved_level(studies: list[Study | None], names: tuple[str, ...]) -> float | None:
    """The success rate the studies call "solved" (``run.stop_success``), where they say; a ValueError
    where they disagree (one report has one level)."""
    levels = {name: first_config(study).run.stop_success for name, study in zip(names, studies, strict=True) if study}
    distinct = sorted({level for level in levels.values() if level is not None})
    if len(distinct) > 1:
        raise ValueError(f"the studies stop at different success rates (run.stop_success {levels}): a report "
                         "of several studies has one level; report them separately")
    return distinct[0] if distinct else None


def make_report(request: ReportRequest, log: Callable[[str], None] = print) -> ReportResult:
    check_request(request)
    if request.studies:
        collection, studies = collect_studies(request, log)
        names = request.studies
    else:
        collection, study = collect(request, log)
        studies, names = [study], (request.study or "",)
    if not collection.runs:
        raise ValueError(f"{collection.description} has no trial runs in MLflow yet")
    grid = merged_grid([expected_grid(study) if study else None for study in studies])
    table = build_table(collection.runs, grid.points if grid else (), task_order(studies, collection))

    out = default_out(request)
    success_level = solved_level(studies, names)  # "solved", where the studies say
    # one writer at a time in --out; every file is drawn in a scratch directory and all are moved in together
    with claim_directory(out, "--out"), scratch_directory(out, "report") as scratch:
        check_no_report(out, request.force)  # again: a report may have been written since the first check
        figures = write_figures(table, scratch, request.threshold, log)
        lengths = memory_length_figure(table)
        if lengths is not None:
            lengths.savefig(scratch / MEMORY_FIGURE)
        lead = memory_length_section(table, MEMORY_FIGURE if lengths is not None else None, success_level,
                                     request.threshold)
        markdown = render(collection, table, grid, budget(collection, table),
                          {task: path.name for task, path in figures.items()}, request.threshold,
                          success_level=success_level, lead=lead)
        (scratch / MARKDOWN).write_text(markdown, encoding="utf-8")
        write_csv(table, scratch / CSV, request.threshold, success_level)
        drafts = (scratch / MARKDOWN, scratch / CSV, *((scratch / MEMORY_FIGURE,) if lengths is not None else ()),
                  *figures.values())
        evaluations = evaluation_rows(table, collection.evaluations)
        if evaluations:
            write_rows(scratch / EVALUATIONS, evaluations)
            drafts += (scratch / EVALUATIONS,)
        publish({draft: out / draft.name for draft in drafts}, replace=request.force, flag="--out")
    files = tuple(out / draft.name for draft in drafts)
    logged_to = None
    if request.log_to_mlflow and collection.parent is not None:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=collection.tracking_uri)
        for path in files:
            client.log_artifact(collection.parent.run_id, str(path), ARTIFACT_DIR)
        logged_to = collection.parent.run_id
        log(f"logged {len(files)} file(s) to MLflow run {logged_to} under {ARTIFACT_DIR}/")
    elif request.log_to_mlflow:
        log("not logged to MLflow: the runs do not belong to one study's parent run"
            + (f" (a report of {len(request.studies)} studies; each keeps its own report)" if request.studies else ""))
    extra = f", {EVALUATIONS} ({len(evaluations)} evaluation(s))" if evaluations else ""
    log(f"report: {out / MARKDOWN} (+ {CSV}, {len(figures)} figure(s){extra})")
    return ReportResult(files, table, collection, grid, logged_to)
