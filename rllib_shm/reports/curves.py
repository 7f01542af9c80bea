"""Learning curves per task: the mean return of a variant's finished runs, mean ± std over seeds,
against env steps; one line and band per variant. Runs are aligned by iteration (the x value is
the runs' mean env steps at that iteration); an iteration with no finished episode yet (NaN) is
left out of that iteration's mean. Where fewer runs report than the variant has (trials that
stopped early, on success or by ASHA, or are still running), the mean is of the runs still there,
so the line is dashed: a survivor's mean, not the variant's.

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


def band(runs: Sequence[RunRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(env steps, mean return, std of the return, runs with a return) per iteration any run reported."""
    iterations = sorted({i for run in runs for i in run.history.iterations})
    steps, means, stds, counts = [], [], [], []
    for iteration in iterations:
        at = [(s, r) for run in runs for i, s, r in zip(run.history.iterations, run.history.env_steps,
                                                          run.history.returns, strict=True) if i == iteration]
        returns = [r for _, r in at if np.isfinite(r)]
        if not returns:
            continue
        steps.append(np.nanmean([s for s, _ in at]))
        means.append(np.mean(returns))
        stds.append(np.std(returns))
        counts.append(len(returns))
    return np.array(steps), np.array(means), np.array(stds), np.array(counts)


def task_figure(task: str, series: Sequence[tuple[str, Sequence[RunRecord]]],
                threshold: float | None = None) -> Figure:
    """One task's figure: a line (mean) and a band (± std) per (label, runs) of ``series``."""
    figure = Figure(figsize=(7, 4.5), dpi=100, layout="tight")
    axis = figure.subplots()
    any_fewer = False
    for label, runs in series:
        steps, mean, std, count = band(runs)
        if not len(steps):
            continue
        everyone = count == len(runs)
        line, = axis.plot(np.where(everyone, steps, np.nan), np.where(everyone, mean, np.nan),
                          label=f"{label} (n={len(runs)})")
        if not everyone.all():  # fewer runs there: dashed, over the whole range (it joins the solid part)
            axis.plot(steps, mean, color=line.get_color(), linestyle="--", linewidth=1,
                      label="dashed: fewer runs report" if not any_fewer else None)
            any_fewer = True
        axis.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
    if threshold is not None:
        axis.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"threshold {threshold:g}")
    axis.set_xlabel("env steps")
    axis.set_ylabel("mean episode return")
    axis.set_title(f"{task}: mean ± std over seeds")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8)
    return figure


def figure_name(task: str) -> str:
    """The PNG's file name for ``task``: ``curves_<env id, project namespace dropped, safe characters>.png``.

    >>> figure_name("rllib_shm/popgym-AutoencodeEasy-v0"), figure_name("my.pkg:Env")
    ('curves_popgym-AutoencodeEasy-v0.png', 'curves_my.pkg_Env.png')
    """
    return "curves_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", task.removeprefix("rllib_shm/")) + ".png"
