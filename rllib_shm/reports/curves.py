"""Learning curves per task: the mean return of a variant's finished runs, mean ± std over seeds,
against env steps; one line and band per variant. Runs are aligned by iteration (the x value is
the runs' mean env steps at that iteration); an iteration with no finished episode yet (NaN) is
left out of that iteration's mean. Where fewer runs report than the variant has (trials that
stopped early, on success or by ASHA, or are still running), the mean is of the runs still there,
so the line is dashed: a survivor's mean, not the variant's. Where runs logged a success rate (envs
that report ``info["success"]``), a second panel below draws it the same way.

    >>> import math
    >>> from rllib_shm.reports.collect import History, RunRecord
    >>> histories = [History((1, 2), (256.0, 512.0), (0.0, 1.0)), History((1, 2), (256.0, 512.0), (math.nan, 1.0))]
    >>> runs = [RunRecord(str(seed), "r", "FINISHED", {}, {}, 0, 1, history=h) for seed, h in enumerate(histories)]
    >>> band(runs)
    (array([256., 512.]), array([0., 1.]), array([0., 0.]), array([1, 2]))
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from rllib_shm.reports.collect import RunRecord
from rllib_shm.reports.table import logged_success


def _values(run: RunRecord, success: bool) -> tuple[float, ...]:
    if not success:
        return run.history.returns
    return run.history.success or (np.nan,) * len(run.history.iterations)


def band(runs: Sequence[RunRecord], success: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, mean, std, runs with a value) of the return (``success``: of the success rate) per
    iteration any run reported."""
    iterations = sorted({i for run in runs for i in run.history.iterations})
    steps, means, stds, counts = [], [], [], []
    for iteration in iterations:
        at = [(s, r) for run in runs for i, s, r in zip(run.history.iterations, run.history.env_steps,
                                                          _values(run, success), strict=True) if i == iteration]
        returns = [r for _, r in at if np.isfinite(r)]
        if not returns:
            continue
        steps.append(np.nanmean([s for s, _ in at]))
        means.append(np.mean(returns))
        stds.append(np.std(returns))
        counts.append(len(returns))
    return np.array(steps), np.array(means), np.array(stds), np.array(counts)


def _panel(axis, series: Sequence[tuple[str, Sequence[RunRecord]]], success: bool) -> None:
    any_fewer = False
    for number, (label, runs) in enumerate(series):
        steps, mean, std, count = band(runs, success)
        color = f"C{number % 10}"  # the same colour per variant in both panels
        if not len(steps):
            continue
        everyone = count == len(runs)
        axis.plot(np.where(everyone, steps, np.nan), np.where(everyone, mean, np.nan), color=color,
                  label=f"{label} (n={len(runs)})")
        if not everyone.all():  # fewer runs there: dashed, over the whole range (it joins the solid part)
            axis.plot(steps, mean, color=color, linestyle="--", linewidth=1,
                      label="dashed: fewer runs report" if not any_fewer else None)
            any_fewer = True
        axis.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)
    axis.grid(alpha=0.3)


def task_figure(task: str, series: Sequence[tuple[str, Sequence[RunRecord]]],
                threshold: float | None = None) -> Figure:
    """One task's figure: a line (mean) and a band (± std) per (label, runs) of ``series``; a second
    panel of the success rate where any run logged one."""
    success = logged_success([run for _, runs in series for run in runs])
    figure = Figure(figsize=(7, 7.5 if success else 4.5), dpi=100, layout="tight")
    axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2)) if success else [figure.subplots()]
    axis = axes[0]
    _panel(axis, series, success=False)
    if threshold is not None:
        axis.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {threshold:g}")
    axis.set_ylabel("mean episode return")
    axis.set_title(f"{task}: mean ± std over seeds")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    if success:
        _panel(axes[1], series, success=True)
        axes[1].set_ylim(-0.02, 1.02)
        axes[1].set_ylabel("success rate")
    axes[-1].set_xlabel("env steps")
    return figure


def figure_name(task: str) -> str:
    """The PNG's file name for ``task``: ``curves_<env id, project namespace dropped, safe characters>.png``.

    >>> figure_name("rllib_shm/popgym-AutoencodeEasy-v0"), figure_name("my.pkg:Env")
    ('curves_popgym-AutoencodeEasy-v0.png', 'curves_my.pkg_Env.png')
    """
    return "curves_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", task.removeprefix("rllib_shm/")) + ".png"
