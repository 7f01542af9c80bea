"""The memory-length view (docs/memory-length.md): how well each memory does as the distance it must
remember grows, the picture a reader should see first.

A task's memory length and family come from the env table (``envs.EnvSpec.memory_length``,
``family``): CueRecall-D<d> remembers d + 1 steps, RepeatFirst up to its episode length − 1,
RepeatPrevious k = 4 / 32 / 64 steps. Tasks without one (Autoencode, Battleship, other envs) are
left out of this view.

- The figure: one panel per family, x = memory length (log scale), y = per run its best success
  rate (families whose envs report ``info["success"]``) or its MMER, mean ± std over seeds; one
  line per memory (variant).
- The table: per task (family, length) and variant, the env steps at which a run first reached the
  level (success rate ≥ ``success_level``, default 95 %; or mean return ≥ ``threshold`` for
  families without a success notion), mean ± std over the runs that reached it, how many did, or
  "not reached" at the budget.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from rllib_shm.reports.table import Cell, Table, logged_success, mean_std

FIGURE = "memory_length.png"
DODGE = 0.015  # the figure's sideways offset between neighbouring memories, × the axis's log span
SUCCESS_LEVEL = 0.95  # the benchmark's "solved": 95 % of the episodes succeed


def memory_length(task: str) -> tuple[str, int] | None:
    """(family, memory length) of a project env id from the env table; None where it has none."""
    import envs

    try:
        spec = envs.get_spec(task)
    except ValueError:
        return None
    return (spec.family, spec.memory_length) if spec.memory_length else None


def families(table: Table) -> dict[str, list[tuple[int, str]]]:
    """family → [(memory length, task)], ascending, for the table's tasks that have a memory length;
    only families with two lengths or more (one task alone is no curve against memory length)."""
    found: dict[str, list[tuple[int, str]]] = {}
    for task in table.tasks:
        known = memory_length(task)
        if known:
            found.setdefault(known[0], []).append((known[1], task))
    return {family: sorted(points) for family, points in found.items() if len(points) >= 2}


def _cells(table: Table, points: Sequence[tuple[int, str]]) -> list[Cell]:
    return [cell for _, task in points for v in table.variants if (cell := table.cell(task, v)) and cell.runs]


def uses_success(table: Table, points: Sequence[tuple[int, str]]) -> bool:
    """Whether the family's finished runs logged a success rate (else it is scored by MMER)."""
    return logged_success([run for cell in _cells(table, points) for run in cell.runs])


def scores(cell: Cell, success: bool) -> list[float]:
    """Per finished run: its best success rate (``success``) or its MMER."""
    return cell.success() if success else cell.values


def _statuses(cell: Cell) -> str:
    """The unfinished runs of a cell by status: "3 failed", "1 failed, 1 running"."""
    counts = Counter(run.status.lower() for run in cell.unfinished)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def memory_length_figure(table: Table) -> Figure | None:
    """One panel per family: score against memory length, one line (mean ± std over seeds) per variant;
    None when no task has a memory length. One panel has its legend inside; several share one legend
    at the right (a memory keeps its colour in every panel), each panel's missing points in its title."""
    found = families(table)
    if not found:
        return None
    several = len(found) > 1
    legend_width = 2.2 if several else 0.0
    figure = Figure(figsize=(5.5 * len(found) + legend_width, 4.5), dpi=100,
                    layout="constrained" if several else "tight")
    count = len(table.variants)
    axes = figure.subplots(1, len(found), squeeze=False)[0]
    handles = {}
    for axis, (family, points) in zip(axes, found.items(), strict=True):
        notes = []
        success = uses_success(table, points)
        lengths = [length for length, _ in points]
        # memories that score alike would hide each other: each line sits a little to the side of
        # its memory length (at most ±4.5 % of the axis's log span with 7 memories; ticks stay exact)
        step = DODGE * max(math.log(max(lengths) / min(lengths)), 1.0)
        for number, variant in enumerate(table.variants):
            shift = math.exp(step * (number - (count - 1) / 2))
            xs, means, stds, missing = [], [], [], []
            for length, task in points:
                cell = table.cell(task, variant)
                values = scores(cell, success) if cell is not None else []
                if values:
                    mean, std = mean_std(values)
                    xs.append(length * shift), means.append(mean), stds.append(std)
                elif cell is not None and cell.unfinished:
                    missing.append(f"{length}: {_statuses(cell)}")
            if xs:
                note = f" (no point at {'; '.join(missing)})" if missing else ""
                bars = axis.errorbar(xs, means, yerr=stds, color=f"C{number % 10}", marker="o", capsize=3,
                                     label=f"{variant.label}{note}")
                handles.setdefault(variant.label, bars)
                if missing:
                    notes.append(f"{variant.label}{note}")
        axis.set_xscale("log")
        axis.set_xticks(lengths, [str(length) for length in lengths])
        axis.xaxis.set_minor_locator(NullLocator())  # a log axis under a decade would label its minor ticks
        axis.set_xlabel("memory length (steps between the cue and its use)")
        axis.set_ylabel("best success rate" if success else "MMER (best mean return)")
        if success:
            axis.set_ylim(-0.02, 1.02)
            axis.axhline(SUCCESS_LEVEL, color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"{family}: mean ± std over seeds" + ("".join(f"\n{n}" for n in notes) if several else ""),
                       fontsize=10 if several else None)
        axis.grid(alpha=0.3)
        if not several and axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=8)
    if several and handles:
        ordered = [v.label for v in table.variants if v.label in handles]
        figure.legend([handles[label] for label in ordered], ordered, loc="outside right upper", fontsize=9,
                      title="memory")
    return figure


def steps_text(cell: Cell | None, level: float, success: bool) -> str:
    """Env steps to ``level``: mean ± std over the runs that reached it and how many did, or
    "not reached" (with the budget of the runs) when none did; "no finished run" (with the others'
    statuses) where runs exist but none finished; empty without runs."""
    if cell is not None and not cell.runs and cell.unfinished:
        return f"no finished run ({_statuses(cell)})"
    if cell is None or not cell.runs:
        return ""
    steps = cell.reached(level, success)
    if not steps:
        budgets = [run.env_steps for run in cell.runs if math.isfinite(run.env_steps)]
        within = f", {max(budgets):,.0f} steps" if budgets else ""
        return f"not reached (0/{len(cell.runs)}{within})"
    mean, std = mean_std(steps)
    return f"{mean:,.0f}" + (f" ± {std:,.0f}" if len(steps) > 1 else "") + f" ({len(steps)}/{len(cell.runs)})"


def memory_length_section(table: Table, figure: str | None, success_level: float | None = None,
                          threshold: float | None = None) -> list[str]:
    """The markdown section (empty when no task has a memory length)."""
    found = families(table)
    if not found:
        return []
    from rllib_shm.reports.markdown import _grid, task_name

    level = success_level if success_level is not None else SUCCESS_LEVEL
    lines = ["## Memory length", "",
             "Per task, the distance in steps between what must be remembered and the step that needs it; per run "
             "its best success rate (or its MMER where the env reports no success), mean ± std over seeds, one "
             "line per memory."]
    if figure:
        lines += ["", f"![score against memory length]({figure})"]
    for family, points in found.items():
        success = uses_success(table, points)
        if success:
            what = f"a success rate of {100 * level:.0f} %"
        elif threshold is not None:
            what = f"a mean return of {threshold:g}"
        else:
            lines += ["", f"{family}: no success rate logged and no `--threshold` given: no env-steps table."]
            continue
        rows = {f"{task_name(task)} ({length} steps)": [steps_text(table.cell(task, v),
                                                                   level if success else threshold, success)
                                                        for v in table.variants] for length, task in points}
        lines += ["", f"### {family}: env steps to {what}", "",
                  "Per run, the env steps at the first iteration that reached it; mean ± std over the runs that did "
                  "(population std), how many of the cell's finished runs did, or *not reached* within the "
                  "runs' budget.", "", *_grid(table, rows)]
    return lines


__all__ = ["FIGURE", "SUCCESS_LEVEL", "families", "memory_length", "memory_length_figure", "memory_length_section",
           "steps_text"]
