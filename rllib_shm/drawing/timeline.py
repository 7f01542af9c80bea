"""The time axis of a drawn episode: which steps to draw, the episode's phases, and their shading.

Dimension letter: T time (steps of the episode). ``phases`` [T] int is the phase of the observation
the agent acted on at step t, as the env reports it in ``info["phase"]`` (reset's info for t = 0,
then step t−1's info): Visual Match's 0 cue, 1 distractor, 2 reward. A span is a maximal run of
equal phase ids; a phase id that comes back later starts a new span. The first span is the cue
phase, the last the final phase, and anything between them the distractor (hold) phase.

    >>> spans = phase_spans(np.r_[[0] * 15, [1] * 100, [2] * 10], {0: "cue", 1: "distractor"})
    >>> [(s.label, s.start, s.stop) for s in spans]
    [('phase 0 (cue)', 0, 14), ('phase 1 (distractor)', 15, 114), ('phase 2', 115, 124)]
    >>> phase_steps(spans, 8)
    [0, 14, 15, 48, 81, 114, 115, 124]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.transforms import offset_copy

PHASE_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")  # by phase id, cycled
PHASE_ALPHA = 0.12  # fill opacity of a phase's span on line plots


@dataclass(frozen=True)
class PhaseSpan:
    """Steps ``start``..``stop`` (both inclusive) of phase id ``phase``, drawn as ``label``."""

    phase: int
    start: int
    stop: int
    label: str


def default_steps(num_steps: int, count: int = 8) -> list[int]:
    """``count`` evenly spaced steps in [0, T-1] with T = ``num_steps``: sorted, unique, always 0 and T-1.

    Returns min(count, T) steps (a single [0] when T = 1). Raises ValueError for T < 1 or count < 2.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be ≥ 1, got {num_steps}")
    if count < 2:
        raise ValueError(f"count must be ≥ 2 (0 and T-1 are always included), got {count}")
    # floor(x + 0.5) is monotone with unit steps, unlike numpy's round-half-to-even.
    points = np.floor(np.linspace(0, num_steps - 1, min(count, num_steps)) + 0.5).astype(int)
    return sorted({int(p) for p in points})


def phase_label(phase: int, names: Mapping[int, str] | None = None) -> str:
    """``"phase 0 (cue)"`` when ``names`` names the phase, else ``"phase 0"``."""
    name = (names or {}).get(phase)
    return f"phase {phase}" + (f" ({name})" if name else "")


def phase_spans(phases: np.ndarray, names: Mapping[int, str] | None = None) -> list[PhaseSpan]:
    """The maximal runs of equal ids in ``phases`` [T] (T ≥ 1), in time order, labelled by :func:`phase_label`."""
    phases = np.asarray(phases)
    starts = [0, *(np.flatnonzero(np.diff(phases)) + 1).tolist()]
    stops = [*(s - 1 for s in starts[1:]), phases.size - 1]
    return [PhaseSpan(int(phases[a]), a, b, phase_label(int(phases[a]), names))
            for a, b in zip(starts, stops, strict=True)]


def phase_steps(spans: Sequence[PhaseSpan], count: int = 8) -> list[int]:
    """At most ``count`` steps to draw, chosen by phase: the first and last step of the first (cue) phase and
    of the final phase, then steps spread evenly over the steps between them (the distractor phase), then, if
    panels are left, over the remaining steps. Always includes 0 and T-1; sorted, unique; min(count, T) steps.
    With a single span, or fewer than 4 panels to fill, it is :func:`default_steps`."""
    num_steps = spans[-1].stop + 1
    first, last = spans[0], spans[-1]
    chosen = {first.start, first.stop, last.start, last.stop}
    if len(spans) < 2 or count < len(chosen):
        return default_steps(num_steps, count)
    for pool in (range(first.stop + 1, last.start), range(num_steps)):
        free = [t for t in pool if t not in chosen]
        chosen |= set(_spread(free, count - len(chosen)))
    return sorted(chosen)


def _spread(pool: list[int], count: int) -> list[int]:
    """min(count, len(pool)) elements of ``pool`` evenly spread over it (its first and last for count ≥ 2)."""
    if count < 1 or not pool:
        return []
    if count == 1:
        return [pool[(len(pool) - 1) // 2]]
    return [pool[i] for i in default_steps(len(pool), count)]


def phase_ticks(spans: Sequence[PhaseSpan]) -> list[int]:
    """x ticks for a time axis: the first step of every span and the last step T-1."""
    return sorted({span.start for span in spans} | {spans[-1].stop})


def shade_phases(ax, spans: Sequence[PhaseSpan], *, fill: bool = True, labels: bool = True) -> None:
    """Mark ``spans`` on a matplotlib Axes whose x axis is t: a light fill per span (``fill``; leave it off
    over a heatmap), a dashed line at every phase change and each span's label, horizontal, inside the top of
    the axes from its first step (``labels``), on two alternating rows so that a short span's label does not
    run into the next one's. Steps are cells [t − 0.5, t + 0.5]."""
    # x in data (steps), y in axes fractions; labels sit 2 points right of the span's first step
    transform = offset_copy(ax.get_xaxis_transform(), fig=ax.figure, x=2, units="points")
    right = offset_copy(ax.get_xaxis_transform(), fig=ax.figure, x=-2, units="points")
    for index, span in enumerate(spans):
        color = PHASE_COLORS[span.phase % len(PHASE_COLORS)]
        if fill:
            ax.axvspan(span.start - 0.5, span.stop + 0.5, color=color, alpha=PHASE_ALPHA, lw=0, zorder=0)
        if index:
            ax.axvline(span.start - 0.5, color="0.3", lw=0.6, ls="--", zorder=1)
        if labels:  # the last span's label ends at its last step, so that it stays inside the axes
            last = index == len(spans) - 1 and index > 0
            ax.text(span.stop + 0.5 if last else span.start - 0.5, 0.97 if index % 2 == 0 else 0.84, span.label,
                    transform=right if last else transform, ha="right" if last else "left", va="top", fontsize=8,
                    color="0.15", clip_on=True, zorder=3,
                    bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1.0})
