"""The Table-1 view: per (task, variant) cell, the MMER of its finished runs, mean ± std over
seeds; the best variant per task; per variant, the average over tasks; optionally the env steps at
which each run's mean return first reached a threshold; and, against the expected grid, the runs
missing per cell. Raw return scale here (``markdown.py`` shows it × 100, as the paper does).

Standard deviations are population ones (numpy's default, ddof = 0) over the runs of a cell.

    >>> from rllib_shm.reports.collect import History, RunRecord
    >>> def run(seed, mmer):
    ...     return RunRecord(f"r{seed}", "r", "FINISHED", {"env.id": "T", "module.memory.kind": "gru",
    ...                      "module.memory.mem_size": "8", "run.seed": str(seed)}, {}, 0, 1, mmer=mmer,
    ...                      history=History((1,), (256.0,), (mmer,)))
    >>> table = build_table([run(0, 0.5), run(1, 1.0)])
    >>> cell = table.cell("T", table.variants[0])
    >>> cell.variant.label, cell.mean, cell.std, cell.n
    ('GRU 8', 0.75, 0.25, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rllib_shm.reports.collect import RunRecord
from rllib_shm.reports.grid import GridPoint
from rllib_shm.reports.grouping import Variant, variants

FINISHED = "FINISHED"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, population std) of the finite values; NaNs when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return float(np.mean(finite)), float(np.std(finite))


def steps_to_reach(run: RunRecord, threshold: float, success: bool = False) -> float | None:
    """Env steps at the first iteration whose mean return (``success``: success rate) over a full
    window of 100 episodes (``History.settled``) reached ``threshold``; None if none did."""
    values = run.history.success if success else run.history.returns
    if not values:
        return None
    for steps, value, settled in zip(run.history.env_steps, values, run.history.settled(), strict=True):
        if settled and math.isfinite(value) and value >= threshold:
            return steps
    return None


@dataclass(frozen=True)
class Cell:
    task: str
    variant: Variant
    runs: tuple[RunRecord, ...]  # finished runs: the ones averaged
    unfinished: tuple[RunRecord, ...]  # running, failed or killed runs
    expected: int | None  # runs the grid expects in this cell (None: no grid)

    @property
    def values(self) -> list[float]:
        return [run.mmer for run in self.runs if math.isfinite(run.mmer)]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean_std(self.values)[0]

    @property
    def std(self) -> float:
        return mean_std(self.values)[1]

    @property
    def seeds(self) -> list[str]:
        return [run.seed for run in self.runs if math.isfinite(run.mmer)]

    @property
    def missing(self) -> int | None:
        return None if self.expected is None else max(self.expected - len(self.runs), 0)

    def reached(self, threshold: float, success: bool = False) -> list[float]:
        """Env steps to ``threshold`` (of the return; ``success``: of the success rate) of the finished
        runs that reached it."""
        steps = (steps_to_reach(run, threshold, success) for run in self.runs)
        return [s for s in steps if s is not None]

    def success(self, final: bool = False) -> list[float]:
        """Per finished run that logged a success rate: its best (``final``: its last) success rate, over
        full windows of 100 episodes (``History.settled``)."""
        values = []
        for run in self.runs:
            finite = [v for v, settled in zip(run.history.success, run.history.settled(), strict=False)
                      if settled and math.isfinite(v)]
            if finite:
                values.append(finite[-1] if final else max(finite))
        return values


def logged_success(runs: Sequence[RunRecord]) -> bool:
    """Whether any of ``runs`` logged a finite success rate (an env that reports ``info["success"]``)."""
    return any(math.isfinite(v) for run in runs for v in run.history.success)


@dataclass(frozen=True)
class Average:
    mean: float  # over tasks, of the cell means
    std: float | None  # over seeds, of each seed's average over tasks (None: the seeds differ by task)
    tasks: int  # tasks with a score
    of_tasks: int


@dataclass(frozen=True)
class Table:
    tasks: tuple[str, ...]
    variants: tuple[Variant, ...]
    cells: dict[tuple[str, str], Cell]  # (task, variant label) -> cell; only where runs or grid points are

    def cell(self, task: str, variant: Variant) -> Cell | None:
        return self.cells.get((task, variant.label))

    def best(self, task: str) -> set[str]:
        """Labels of the variants with the highest mean MMER on ``task`` (ties: all)."""
        means = {v.label: c.mean for v in self.variants if (c := self.cell(task, v)) and c.n}
        top = max(means.values(), default=math.nan)
        return {label for label, mean in means.items() if mean == top}

    def average(self, variant: Variant) -> Average | None:
        cells = [c for task in self.tasks if (c := self.cell(task, variant)) and c.n]
        if not cells:
            return None
        mean = float(np.mean([c.mean for c in cells]))
        seed_sets = {tuple(sorted(c.seeds)) for c in cells}
        std = None
        if len(seed_sets) == 1 and all(len(set(c.seeds)) == len(c.seeds) for c in cells):
            per_seed = [np.mean([dict(zip(c.seeds, c.values, strict=True))[seed] for c in cells])
                        for seed in next(iter(seed_sets))]
            std = float(np.std(per_seed))
        return Average(mean, std, len(cells), len(self.tasks))

    def has_success(self) -> bool:
        """Whether any finished run logged a success rate (an env that reports ``info["success"]``)."""
        return logged_success([run for cell in self.cells.values() for run in cell.runs])

    def best_average(self) -> set[str]:
        """Labels of the best averages among the variants scored on every task."""
        full = {v.label: a.mean for v in self.variants if (a := self.average(v)) and a.tasks == a.of_tasks}
        top = max(full.values(), default=math.nan)
        return {label for label, mean in full.items() if mean == top}


def build_table(runs: Sequence[RunRecord], grid: Sequence[GridPoint] = (),
                task_order: Sequence[str] = ()) -> Table:
    """Group ``runs`` (any status; only finished ones are averaged) and the grid's points into cells."""
    items = [*runs, *grid]
    labels = variants(items)
    run_variants, grid_variants = labels[:len(runs)], labels[len(runs):]
    members: dict[tuple[str, str], list] = {}
    by_label: dict[str, Variant] = {}
    for item, variant in zip(items, labels, strict=True):
        members.setdefault((item.task, variant.label), [])
        by_label[variant.label] = variant
    for run, variant in zip(runs, run_variants, strict=True):
        members[(run.task, variant.label)].append(run)
    expected: dict[tuple[str, str], int] = {}
    for point, variant in zip(grid, grid_variants, strict=True):
        expected[(point.task, variant.label)] = expected.get((point.task, variant.label), 0) + 1
    cells = {}
    for (task, label), cell_runs in members.items():
        finished = tuple(r for r in cell_runs if r.status == FINISHED)
        others = tuple(r for r in cell_runs if r.status != FINISHED)
        cells[(task, label)] = Cell(task, by_label[label], finished, others,
                                    expected.get((task, label)) if grid else None)
    tasks = {task for task, _ in members}
    ordered = [t for t in dict.fromkeys(task_order) if t in tasks] + sorted(tasks - set(task_order))
    return Table(tuple(ordered), tuple(sorted(by_label.values(), key=lambda v: v.sort_key)), cells)


def table_rows(table: Table, threshold: float | None = None, success_level: float | None = None) -> list[dict]:
    """The table as CSV rows, one per cell (raw MMER scale; seeds separated by spaces); with success
    columns where runs logged a success rate (``success_level``: env steps until it was reached)."""
    from rllib_shm.reports.paper import paper_score

    rows = []
    with_success = table.has_success()
    for task in table.tasks:
        for variant in table.variants:
            cell = table.cell(task, variant)
            if cell is None:
                continue
            score = paper_score(task, variant.memory_kind)
            row = {"task": task, "variant": variant.label, "memory": variant.memory_kind, "n": cell.n,
                   "seeds": " ".join(cell.seeds), "mmer_mean": cell.mean, "mmer_std": cell.std,
                   "best": variant.label in table.best(task), "expected": cell.expected, "missing": cell.missing,
                   "unfinished": len(cell.unfinished),
                   "paper_mmer_x100_mean": score.mean if score else None,
                   "paper_mmer_x100_std": score.std if score else None}
            if threshold is not None:
                steps = cell.reached(threshold)
                row.update(threshold=threshold, reached=len(steps), steps_to_threshold_mean=mean_std(steps)[0],
                           steps_to_threshold_std=mean_std(steps)[1])
            if with_success:
                best, final = mean_std(cell.success()), mean_std(cell.success(final=True))
                row.update(success_best_mean=best[0], success_best_std=best[1], success_final_mean=final[0],
                           success_final_std=final[1])
                if success_level is not None:
                    steps = cell.reached(success_level, success=True)
                    row.update(success_level=success_level, success_reached=len(steps),
                               steps_to_success_mean=mean_std(steps)[0], steps_to_success_std=mean_std(steps)[1])
            rows.append(row)
    return rows
