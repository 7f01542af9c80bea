"""The budget a report's runs used, beside the paper's: env steps per trial (the runs' last
``env_steps``), seeds per cell, total env steps and wall time.

Wall time is the study's parent run from start to end (to now while it runs; a study stopped and
resumed later counts the pause), for a report of several studies the sum of their parent runs' wall
times, or without a parent the span from the first run's start to the last
run's end; trial time is the sum of the runs' own durations (a run killed and resumed counts its pause
too)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from rllib_shm.reports.collect import Collection, RunRecord
from rllib_shm.reports.paper import PaperBudget, paper_budget
from rllib_shm.reports.table import Table


@dataclass(frozen=True)
class FamilyBudget:
    paper: PaperBudget | None  # None: tasks the paper did not run
    tasks: tuple[str, ...]
    steps_per_trial: tuple[float, float] | None  # (min, max) over finished runs; None: none finished
    seeds_per_cell: tuple[int, int]  # (min, max) finished runs per cell

    def fraction(self) -> float | None:
        """Our largest env steps per trial over the paper's, where the paper gives one number."""
        if self.steps_per_trial is None or self.paper is None or not self.paper.env_steps_per_trial:
            return None
        return max(self.steps_per_trial) / self.paper.env_steps_per_trial


@dataclass(frozen=True)
class Budget:
    families: tuple[FamilyBudget, ...]
    total_env_steps: float  # all runs, any status
    runs: int
    wall_s: float | None
    wall_source: str
    trial_s: float


def _duration_s(run: RunRecord, now_ms: int) -> float:
    if run.start_ms is None:
        return 0.0
    return max(((run.end_ms or now_ms) - run.start_ms) / 1000, 0.0)


def _wall(collection: Collection, now_ms: int) -> tuple[float | None, str]:
    parent = collection.parent
    timed = [p for p in collection.parents if p.start_ms is not None]
    if parent is None and timed:  # several studies, run one after another (perhaps days apart)
        return sum(_duration_s(p, now_ms) for p in timed), (
            f"the {len(timed)} studies' parent runs, each start to end, summed")
    if parent is not None and parent.start_ms is not None:
        running = parent.status == "RUNNING" or parent.end_ms is None
        return _duration_s(parent, now_ms), ("the study's parent run, start to now (still running)" if running
                                             else "the study's parent run, start to end, any pause between a stop "
                                                  "and `--resume` included")
    starts = [r.start_ms for r in collection.runs if r.start_ms is not None]
    ends = [r.end_ms or now_ms for r in collection.runs if r.start_ms is not None]
    if not starts:
        return None, "no run recorded a start time"
    return (max(ends) - min(starts)) / 1000, "first run's start to last run's end"


def budget(collection: Collection, table: Table, now_ms: int | None = None) -> Budget:
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    families: dict[str, list[str]] = {}
    papers: dict[str, PaperBudget | None] = {}
    for task in table.tasks:
        paper = paper_budget(task)
        key = paper.family if paper else ""
        families.setdefault(key, []).append(task)
        papers[key] = paper
    result = []
    for key, tasks in families.items():
        cells = [c for c in table.cells.values() if c.task in tasks]
        steps = [r.env_steps for c in cells for r in c.runs if math.isfinite(r.env_steps)]
        counts = [len(c.runs) for c in cells] or [0]
        result.append(FamilyBudget(papers[key], tuple(tasks), (min(steps), max(steps)) if steps else None,
                                   (min(counts), max(counts))))
    total = sum(r.env_steps for r in collection.runs if math.isfinite(r.env_steps))
    wall, source = _wall(collection, now_ms)
    trial_s = sum(_duration_s(r, now_ms) for r in collection.runs)
    return Budget(tuple(result), total, len(collection.runs), wall, source, trial_s)


def hours(seconds: float | None) -> str:
    """'1 h 05 min', '3 min 20 s', '42 s'.

    >>> hours(3900), hours(200), hours(42.4), hours(None)
    ('1 h 05 min', '3 min 20 s', '42 s', '?')
    """
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"

