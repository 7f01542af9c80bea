"""The report as markdown: the Table-1 view (MMER × 100, best per task in bold, the average row, the
paper's numbers marked as such), the optional threshold table, success rates where the envs report
``info["success"]``, the evaluations of the trained runs (``rllib-shm evaluate``, e.g. on held-out
tasks), the study's completeness against its expected grid, the budget against the paper's, and the
learning-curve figures. A study of many variants on few tasks gets its tables
transposed (a row per variant, ``transposed``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from rllib_shm.reports import paper
from rllib_shm.reports.budget import Budget, hours
from rllib_shm.reports.collect import Collection, Evaluation, RunRecord
from rllib_shm.reports.grid import Grid
from rllib_shm.reports.table import FINISHED, Cell, Table, mean_std

SCALE = paper.SCALE


def task_name(task: str) -> str:
    return task.removeprefix("rllib_shm/").removesuffix("-v0")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _score(mean: float, std: float | None) -> str:
    return f"{mean:.1f}" if std is None or not math.isfinite(std) else f"{mean:.1f} ± {std:.1f}"


def _share(fraction: float) -> str:
    """A fraction as a percentage, two significant digits below 10 %, whole numbers above.

    >>> _share(0.01365), _share(0.033), _share(1.0039), _share(0.25)
    ('1.4 %', '3.3 %', '100 %', '25 %')
    """
    percent = 100 * fraction
    return f"{percent:.2g} %" if percent < 10 else f"{percent:.0f} %"


def _paper_mark(score: paper.PaperScore | None) -> str:
    return f" · *paper: {_score(score.mean, score.std)}*" if score else ""


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def transposed(table: Table) -> bool:
    """Variants as rows, tasks as columns: for a study of many variants on few tasks (e.g. one factor at a
    time on one task), where one column per variant would make a table too wide to read."""
    return len(table.variants) > max(len(table.tasks), 4)


def _grid(table: Table, rows: dict[str, list[str]]) -> list[str]:
    """A markdown table of ``rows`` (row label -> one cell per variant, in ``table.variants`` order): one row
    per label and a column per variant, or the transpose (``transposed``), a row per variant."""
    labels = [_escape(v.label) for v in table.variants]
    if not transposed(table):
        return [_row(["task", *labels]), _row(["---"] * (len(labels) + 1)),
                *(_row([name, *cells]) for name, cells in rows.items())]
    return [_row(["variant", *rows]), _row(["---"] * (len(rows) + 1)),
            *(_row([label, *(cells[i] for cells in rows.values())]) for i, label in enumerate(labels))]


def _mmer_cell(table: Table, cell: Cell | None, task: str) -> str:
    if cell is None:
        return ""
    mark = _paper_mark(paper.paper_score(task, cell.variant.memory_kind))
    if not cell.n:
        return "—" + (f" (0/{cell.expected})" if cell.expected else "") + mark
    text = _score(SCALE * cell.mean, SCALE * cell.std if cell.n > 1 else None)  # one seed: no spread to show
    if cell.variant.label in table.best(task):
        text = f"**{text}**"
    return f"{text} (n={cell.n})" + mark


def mmer_section(table: Table) -> list[str]:
    lines = [
        "## MMER × 100 (the paper's Table-1 view)", "",
        "MMER (metric `episode_return_max_mean`): per run, the maximum over training iterations of the mean "
        f"episodic return. Shown × {SCALE}, the scale of the paper's Table 1; mean ± std over seeds (population "
        "std), n = finished runs (— (0/k): none of the k the grid expects has finished); **bold**: the best per "
        "task. *paper: …* marks the paper's own number for the "
        "same memory kind on that task, at the paper's budget and sizes, not ours "
        f"(source: {paper.SOURCE}).", "",
    ]
    rows = {task_name(task): [_mmer_cell(table, table.cell(task, v), task) for v in table.variants]
            for task in table.tasks}
    averages = []
    paper_row = set(table.tasks) == set(paper.POPGYM_TASKS)
    for variant in table.variants:
        average = table.average(variant)
        if average is None:
            averages.append("")
            continue
        text = _score(SCALE * average.mean, None if average.std is None else SCALE * average.std)
        if variant.label in table.best_average():
            text = f"**{text}**"
        text += f" ({average.tasks}/{average.of_tasks} tasks)"
        if paper_row:
            text += _paper_mark(paper.POPGYM_AVERAGE.get(variant.memory_kind))
        averages.append(text)
    average_shown = len(table.tasks) > 1 or not transposed(table)  # (a column for one task would repeat it)
    if average_shown:
        rows["average"] = averages
    lines += _grid(table, rows)
    if average_shown:
        where = "column" if transposed(table) else "row"
        lines += ["", f"The average {where}: the mean over tasks of the cell means; its ± is the std over seeds of "
                      "each seed's average over tasks (shown only where every task has the same seeds). Bold among "
                      "variants scored on every task."]
    if any(task in paper.POPGYM_TASKS for task in table.tasks) and not paper_row:
        averages = ", ".join(f"{paper.PAPER_MEMORY[kind]} {_score(s.mean, s.std)}"
                             for kind, s in paper.POPGYM_AVERAGE.items())
        lines += ["", f"The paper's averages over all 12 POPGym tasks (× {SCALE}; not comparable with scores over "
                      f"{len(table.tasks)} task(s)): {averages}."]
    return lines


def _steps_cell(cell: Cell | None, level: float, success: bool = False) -> str:
    """Env steps to ``level`` (of the return; ``success``: of the success rate) over the cell's finished runs
    that reached it, mean ± std, and how many did."""
    if cell is None or not cell.runs:
        return ""
    steps = cell.reached(level, success)
    mean, std = mean_std(steps)
    text = (f"{mean:,.0f}" + (f" ± {std:,.0f}" if len(steps) > 1 else "")) if steps else "—"
    return f"{text} ({len(steps)}/{len(cell.runs)} reached)"


def threshold_section(table: Table, threshold: float) -> list[str]:
    lines = [f"## Env steps to a mean return of {threshold:g}", "",
             f"Per run, the env steps at the first iteration whose mean return (`episode_return_mean`) reached "
             f"{threshold:g}; mean ± std over the seeds that reached it (population std), and how many of the "
             "cell's finished runs reached it.", ""]
    rows = {task_name(task): [_steps_cell(table.cell(task, v), threshold) for v in table.variants]
            for task in table.tasks}
    return lines + _grid(table, rows)


def _percent(values: list[float]) -> str:
    """Mean (± std) of shares in whole percent; to one decimal where a nonzero mean is below 10 %, so
    that a rare success (one episode of 100 on one seed of three: 0.3 ± 0.5 %) does not read 0 %, and
    1.1 % and 0.9 % do not read 1 % and 0.9 % side by side."""
    if not values:
        return "—"
    mean, std = mean_std(values)
    digits = 1 if 0 < 100 * mean < 10 else 0
    return (f"{100 * mean:.{digits}f} %" if len(values) == 1
            else f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f} %")


def success_section(table: Table, level: float | None) -> list[str]:
    """Success rates of envs that report ``info["success"]`` (Visual Match, Key-to-Door, MiniGrid…): per
    cell the best and the last success rate of each run, mean ± std over seeds, and with ``level`` (the
    study's ``run.stop_success``) the env steps until a run first reached it. Tasks whose runs logged no
    success rate are left out."""
    lines = ["## Success rate", "",
             "Per run, the success rate after each iteration (the share of the last 100 training episodes "
             "whose env reported `info[\"success\"]`, counted once 100 have finished): its best over training and "
             "its last; mean ± std over the seeds (population std), **bold**: the best per task."]
    if level is not None:
        lines[-1] += (f" Env steps to {100 * level:.0f} %: per run, the env steps at the first iteration whose "
                      f"success rate reached {level:g} (the study's `run.stop_success`, where a trial ends); mean ± "
                      "std over the seeds that reached it, and how many of the cell's finished runs did.")
    lines.append("")
    rows: dict[str, list[str]] = {}
    for task in table.tasks:
        cells = [table.cell(task, v) for v in table.variants]
        best = {i: mean_std(c.success())[0] for i, c in enumerate(cells) if c is not None and c.success()}
        if not best:  # no success reported on this task (e.g. a POPGym task beside a Visual Match one)
            continue
        top = max(best.values())
        name = task_name(task)
        rows[f"{name}: best success"] = [
            "" if c is None else (f"**{_percent(c.success())}**" if best.get(i) == top else _percent(c.success()))
            for i, c in enumerate(cells)]
        rows[f"{name}: last success"] = ["" if c is None else _percent(c.success(final=True)) for c in cells]
        if level is not None:
            rows[f"{name}: env steps to {100 * level:.0f} %"] = [_steps_cell(c, level, success=True) for c in cells]
    return lines + _grid(table, rows)


def evaluated(table: Table, evaluations: Sequence[Evaluation]) -> dict[str, dict[tuple[str, str], list[Evaluation]]]:
    """setting -> (task, variant label) -> the evaluations of the cell's finished runs (seed order)."""
    result: dict[str, dict[tuple[str, str], list[Evaluation]]] = {}
    for setting in dict.fromkeys(e.setting for e in evaluations):
        of_run = {e.training_run_id: e for e in evaluations if e.setting == setting}
        cells = {key: [of_run[r.run_id] for r in cell.runs if r.run_id in of_run] for key, cell in table.cells.items()}
        result[setting] = {key: found for key, found in cells.items() if found}
    return {setting: cells for setting, cells in result.items() if cells}


def _return_cell(values: list[float], of: int, bold: bool) -> str:
    mean, std = mean_std(values)
    text = f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {std:.2f}"
    return (f"**{text}**" if bold else text) + f" ({len(values)}/{of})"


def outcome_names(evaluations: Sequence[Evaluation]) -> list[str]:
    """The outcomes the evaluations name, the most frequent (summed shares) first.

    >>> e = Evaluation("e", "t", "s", "c", 10, 1.0, 0.0, 0.5, 1, (("no_key", 0.5), ("opened_door", 0.5)))
    >>> outcome_names([e, Evaluation("f", "t", "s", "c", 10, 1.0, 0.0, 0.1, 1, (("no_key", 0.9),))])
    ['no_key', 'opened_door']
    """
    totals: dict[str, float] = {}
    for evaluation in evaluations:
        for outcome, share in evaluation.outcomes:
            totals[outcome] = totals.get(outcome, 0.0) + share
    return sorted(totals, key=lambda outcome: (-totals[outcome], outcome))


def evaluation_section(table: Table, evaluations: Sequence[Evaluation]) -> list[str]:
    """Per evaluation setting (``collect.evaluation_setting``), per cell: the mean return of the cell's
    evaluated finished runs (each run's evaluation mean over its episodes), mean ± std over seeds, with
    how many of the cell's finished runs were evaluated, the success rate where the env reports one, and
    the share of each outcome where the env names them (``info["outcome"]``). Empty when no finished
    run was evaluated."""
    by_setting = evaluated(table, evaluations)
    if not by_setting:
        return []
    lines = ["## Evaluations", "",
             "`rllib-shm evaluate` runs of the finished trials' checkpoints (MLflow runs of kind `evaluation` nested "
             "under them), one table per setting: per run its mean return over the evaluation's episodes (the raw "
             "return, not × 100), its success rate and, where the env names what the agent did, the share of "
             "episodes of each outcome; mean ± std over the evaluated seeds (population std), "
             "(evaluated/finished) runs, **bold**: the best return per task. Where a run was evaluated more than once "
             "with one setting, the last evaluation counts; `evaluations.csv` lists each one with its checkpoint."]
    for setting, cells in by_setting.items():
        rows: dict[str, list[str]] = {}
        for task in table.tasks:
            found = {v.label: cells.get((task, v.label), []) for v in table.variants}
            means = {label: mean_std([e.return_mean for e in es])[0] for label, es in found.items() if es}
            if not means:
                continue
            top = max(means.values())
            name = task_name(task)
            rows[f"{name}: return"] = [
                _return_cell([e.return_mean for e in es], table.cells[(task, label)].n, means[label] == top)
                if es else "" for label, es in found.items()]
            if any(math.isfinite(e.success_rate) for es in found.values() for e in es):
                rows[f"{name}: success"] = [_percent([e.success_rate for e in es if math.isfinite(e.success_rate)])
                                            if es else "" for es in found.values()]
            for outcome in outcome_names([e for es in found.values() for e in es]):
                rows[f"{name}: {_escape(outcome)}"] = [
                    _percent([dict(e.outcomes).get(outcome, 0.0) for e in es if e.outcomes]) if es else ""
                    for es in found.values()]
        lines += ["", f"### {_escape(setting)}", "", *_grid(table, rows)]
    return lines


def _unfinished_rows(runs: list[tuple[RunRecord, str]]) -> list[str]:
    lines = [_row(["trial", "task", "variant", "seed", "status", "iterations", "env steps", "MMER × 100 so far"]),
             _row(["---"] * 8)]
    for run, label in runs:
        iterations = run.history.iterations[-1] if run.history.iterations else 0
        steps = f"{run.env_steps:,.0f}" if math.isfinite(run.env_steps) else "0"
        mmer = f"{SCALE * run.mmer:.1f}" if math.isfinite(run.mmer) else "—"
        lines.append(_row([run.trial, task_name(run.task), _escape(label), run.seed, run.status, str(iterations),
                           steps, mmer]))
    return lines


def completeness_section(collection: Collection, table: Table, grid: Grid | None) -> list[str]:
    cells = [table.cells[(t, v.label)] for t in table.tasks for v in table.variants if (t, v.label) in table.cells]
    finished = sum(len(c.runs) for c in cells)
    lines = ["## Completeness", ""]
    if grid is None:
        lines.append(f"No study search space to compare with: {finished} finished run(s) in {len(cells)} cell(s).")
    elif not grid.points:
        lines.append(f"No expected grid ({grid.reason}); the study asks for {grid.num_samples} trials, "
                     f"{finished} finished.")
    else:
        missing = sum(c.missing or 0 for c in cells)
        lines.append(f"Expected grid: {len(grid.points)} combination(s) of the searched values; the study asks for "
                     f"{grid.num_samples} trial(s) (tune.num_samples); {finished} finished, {missing} missing from "
                     "the grid.")
    lines += ["", _row(["task", "variant", "finished", "expected", "missing", "running / failed / killed"]),
              _row(["---"] * 6)]
    for cell in cells:
        statuses = [r.status for r in cell.unfinished]
        other = " / ".join(str(statuses.count(s)) for s in ("RUNNING", "FAILED", "KILLED"))
        lines.append(_row([task_name(cell.task), _escape(cell.variant.label), str(len(cell.runs)),
                           "?" if cell.expected is None else str(cell.expected),
                           "?" if cell.missing is None else str(cell.missing), other]))
    unfinished = [(r, c.variant.label) for c in cells for r in c.unfinished]
    if unfinished:
        lines += ["", "Runs not finished (not in the tables above):", "", *_unfinished_rows(unfinished)]
    return lines


def budget_section(result: Budget) -> list[str]:
    lines = ["## Budget", "", _row(["tasks", "env steps per trial (ours)", "the paper's", "ours / the paper's",
                                    "finished runs per cell (ours)"]), _row(["---"] * 5)]
    for family in result.families:
        tasks = ", ".join(task_name(t) for t in family.tasks)
        ours = "—" if family.steps_per_trial is None else (
            f"{family.steps_per_trial[0]:,.0f}" if family.steps_per_trial[0] == family.steps_per_trial[1]
            else f"{family.steps_per_trial[0]:,.0f}–{family.steps_per_trial[1]:,.0f}")
        theirs = f"{family.paper.family}: {family.paper.text}" if family.paper else "not a task of the paper"
        fraction = family.fraction()
        low, high = family.seeds_per_cell
        lines.append(_row([tasks, ours, theirs, "—" if fraction is None else _share(fraction),
                           str(low) if low == high else f"{low}–{high}"]))
    lines += ["", f"Total: {result.total_env_steps:,.0f} env steps over {result.runs} run(s) (every status); "
                  f"wall time {hours(result.wall_s)} ({result.wall_source}); {hours(result.trial_s)} of run time "
                  "summed over runs."]
    return lines


def incomplete(collection: Collection, table: Table, grid: Grid | None) -> list[str]:
    """Why the report's results are not a complete study (empty: complete, or nothing to compare with)."""
    finished = sum(r.status == FINISHED for r in collection.runs)
    reasons = []
    if finished < len(collection.runs):
        reasons.append(f"{len(collection.runs) - finished} run(s) not finished")
    if grid is not None and finished < grid.num_samples:
        reasons.append(f"{finished} of the study's {grid.num_samples} trials (tune.num_samples) finished")
    missing = sum(c.missing or 0 for c in table.cells.values())
    if grid is not None and missing:
        reasons.append(f"{missing} of the grid's {len(grid.points)} combinations have no finished run")
        if grid.num_samples < len(grid.points):
            reasons.append(f"the study asks for only {grid.num_samples} of them")
    return reasons


def render(collection: Collection, table: Table, grid: Grid | None, result: Budget,
           figures: Mapping[str, str], threshold: float | None = None, now: datetime | None = None,
           success_level: float | None = None, lead: Sequence[str] = ()) -> str:
    """The whole report; ``figures``: task -> PNG file name (beside the markdown); a success section where
    runs logged a success rate (``success_level``: also the env steps until it was reached); ``lead``: lines
    shown first, before the MMER table (the memory-length view, ``memory_length.py``)."""
    runs = collection.runs
    count = {s: sum(r.status == s for r in runs) for s in (FINISHED, "RUNNING", "FAILED", "KILLED")}
    parent = collection.parent
    where = (f"MLflow parent run `{parent.run_id}`" if parent else
             f"MLflow parent runs {', '.join(f'`{p.run_id}`' for p in collection.parents)}" if collection.parents
             else "MLflow")
    lines = [f"# Results: {collection.description}", "",
             f"Generated by `rllib-shm report` on {(now or datetime.now()):%Y-%m-%d %H:%M} from {where} at "
             f"`{collection.tracking_uri}`: {len(runs)} run(s), {count[FINISHED]} finished, {count['RUNNING']} "
             f"running, {count['FAILED']} failed, {count['KILLED']} killed."]
    reasons = incomplete(collection, table, grid)
    if reasons:
        lines += ["", f"**Incomplete**: {'; '.join(reasons)} (see Completeness)."]
    if lead:
        lines += ["", *lead]
    lines += ["", *mmer_section(table)]
    if threshold is not None:
        lines += ["", *threshold_section(table, threshold)]
    if table.has_success():
        lines += ["", *success_section(table, success_level)]
    evaluations = evaluation_section(table, collection.evaluations)
    if evaluations:
        lines += ["", *evaluations]
    lines += ["", *completeness_section(collection, table, grid), "", *budget_section(result), "",
              "## Learning curves", "",
              "Mean episode return (`episode_return_mean`) of the finished runs against env steps, mean ± std over "
              "seeds, one line per variant; dashed where fewer runs report than the variant has (a run that stopped "
              "early), i.e. the mean of the runs still there."
              + (" Below it, the success rate the same way." if table.has_success() else "")]
    for task in table.tasks:
        if task in figures:
            lines += ["", f"### {task_name(task)}", "", f"![{task_name(task)}]({figures[task]})"]
    return "\n".join(lines) + "\n"

