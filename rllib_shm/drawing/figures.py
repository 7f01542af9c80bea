"""What a memory did over one episode: heatmaps, an animation, the vanishing measure and the retention of
the cue (paper Fig. 3c).

Dimension letters: T time (steps of the episode), H memory size. An SHM recording holds the matrix
memory M_t [T, H, H] and its calibration C_t [T, H, H] (entries in (0, 2): < 1 forgets, = 1 keeps,
> 1 strengthens); a vector-state recording (e.g. a GRU's h_t) holds [T, H] and no calibration. With the
episode's phases (``info["phase"]`` per step, e.g. Visual Match's cue, distractor, reward) every time axis
shades them, panel titles name them and the default steps follow them (``timeline.py``).

Every PNG reads without the documentation: axes are labelled with what they show (step t, key index j,
value index i, the quantity and its scale), panel titles name the step, its phase and reward, text is at
least 8 pt at the default dpi, and the bottom line of each figure is a caption saying what to look for
(``CAPTIONS``).

Figure sizes are deterministic (no ``bbox_inches="tight"``), with ``n`` panels at ``dpi``:

- ``memory_steps.png``, ``calibration_steps.png``: width = round(dpi * (2.0 * n + 1.0)) px,
  height = round(dpi * 3.6) px, n = number of steps drawn (each panel 2.0 in, plus 1.0 in for
  margins and the shared colorbar).
- ``memory.gif`` frames: the same formula with n = 2 (M_t and C_t) when calibration is given, else n = 1.
- A vector state counts as n = 3 (one wide time × units panel) in both files.
- ``vanishing.png``: width = round(dpi * 6.0) px, height = round(dpi * 4.0) px; x spans all of t = 0..T−1.
- ``retention.png`` (``retention.py``: the cue columns' calibration, log ∏C and the cue content held, three
  panels over t = 0..T−1): width = round(dpi * 7.0) px, height = round(dpi * 8.0) px. Written only for a
  matrix memory with calibration and a known cue phase (the first of ``phases``, or ``cue_steps``), with at
  least one step after it; the cue columns are then ticked (red) on the x axis of both step grids.

Drawing uses bare ``matplotlib.figure.Figure`` objects rendered by Agg in ``savefig``: this module never imports
pyplot and leaves matplotlib's backend as it finds it, so sizes and pixels are the same under any backend.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from rllib_shm.drawing.recording import MemoryRecording, calibration_zoom, episode_mean, vanishing_fraction
from rllib_shm.drawing.retention import Retention, draw_retention, retention
from rllib_shm.drawing.timeline import PhaseSpan, default_steps, phase_steps, phase_ticks, shade_phases
from rllib_shm.files import claim_directory, publish, scratch_directory

PANEL_IN = 2.0  # width of one panel, inches
MARGIN_IN = 1.0  # margins + colorbar, inches
HEIGHT_IN = 3.6  # height of grid figures and GIF frames, inches
VECTOR_PANELS = 3  # a vector state's time × units heatmap is as wide as this many panels
VANISHING_IN = (6.0, 4.0)  # width, height of vanishing.png, inches
RETENTION_IN = (7.0, 8.0)  # width, height of retention.png, inches
MAX_PANELS = 32  # steps per grid figure
MAX_FRAMES = 300  # GIF frames; longer episodes are subsampled evenly
FPS = 8
# readable at the default dpi: nothing below 8 pt (tests/test_visualize.py checks every text of every PNG)
RC = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
      "legend.fontsize": 8, "figure.titlesize": 10, "figure.labelsize": 9}
M_LABEL = "M_t[i, j] (memory entry)"
C_LABEL = "C_t[i, j]: < 1 forgets, 1 keeps, > 1 strengthens"
# the bottom line of each PNG: what to look for
CAPTIONS = {
    "memory_steps": "Look for: what the cue phase writes into M (columns j ticked red: the cue columns) and "
                    "whether it is still there in the last panels. Rows i: value index, columns j: key index.",
    "memory_steps_plain": "Look for: where M_t's entries grow (red +, blue −) and whether what the first steps "
                          "wrote is still there in the last panels. Rows i: value index, columns j: key index.",
    "calibration_steps": "Look for: white = C keeps (1), blue = forgets (< 1), red = strengthens (> 1). A memory "
                         "that keeps the cue stays white on the red-ticked cue columns through the distractor.",
    "calibration_steps_plain": "Look for: white = C keeps (1), blue = forgets (< 1), red = strengthens (> 1), "
                               "step by step: the columns that stay white are the ones the memory holds on to.",
    "memory_steps_vector": "Look for: which units change when the key information arrives, and whether they "
                           "hold their values until it is needed.",
    "vanishing": "Look for: the share of memory entries whose accumulated calibration ∏C is below 1. Climbing "
                 "towards 1 = the memory fades; flat = forgetting and strengthening stay balanced.",
    "retention": "Look for: red (cue columns) staying at C ≈ 1 in (a) and log ∏C ≈ 0 in (b) through the "
                 "distractor while blue falls; in (c), a solid line at or above 1 = the cue's content is "
                 "still in memory.",
}
CUE_COLOR = "C3"  # cue columns' ticks on the step grids
FILES = ("memory_steps.png", "calibration_steps.png", "memory.gif", "vanishing.png", "retention.png", "summary.json")


def _figure(inches_wide: float, inches_high: float, dpi: int) -> Figure:
    """A figure of exactly round(dpi * inches) pixels each way (Agg truncates, so add a quarter pixel).

    A bare ``Figure``, never registered with pyplot: nothing to close, and the global backend is left alone
    (``savefig`` renders PNG and the GIF's RGBA frames with Agg whatever the backend).
    """
    width, height = round(dpi * inches_wide), round(dpi * inches_high)
    return Figure(figsize=((width + 0.25) / dpi, (height + 0.25) / dpi), dpi=dpi, layout="constrained")


def _caption(fig: Figure, key: str, inches_wide: float) -> None:
    """The figure's bottom line: ``CAPTIONS[key]``, wrapped to the figure's width (about 13 characters per inch
    at 9 pt), in italics; constrained layout keeps room for it."""
    fig.supxlabel(textwrap.fill(CAPTIONS[key], width=max(40, int(13 * inches_wide))), fontstyle="italic",
                  fontsize=RC["figure.labelsize"])


def _cmap(name: str = "RdBu_r") -> matplotlib.colors.Colormap:
    return matplotlib.colormaps[name].with_extremes(bad="black")  # non-finite entries show black


def _max_abs(values: np.ndarray) -> float | None:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _reward_text(rewards: np.ndarray | None, t: int) -> str:
    return "" if rewards is None else f", r = {rewards[t]:g}, return = {np.sum(rewards[: t + 1]):g}"


def _step_labels(spans: list[PhaseSpan] | None) -> list[str] | None:
    """Each step's phase label [T], or None without phases."""
    return None if spans is None else [span.label for span in spans for _ in range(span.start, span.stop + 1)]


def _draw_grid(frames: np.ndarray, steps: list[int], path: Path, dpi: int, recording: MemoryRecording,
               norm: matplotlib.colors.Normalize, label: str, columns: np.ndarray | None,
               caption: str, note: str | None = None) -> None:
    """One row of heatmaps, frames [n, H, H] at ``steps``, one shared colorbar; panel titles name the step, its
    phase and reward; ``columns`` (the cue columns) are ticked in red on each panel's x axis (column index j);
    ``note`` is a line of the heading (e.g. the colour range)."""
    width = PANEL_IN * len(steps) + MARGIN_IN
    fig = _figure(width, HEIGHT_IN, dpi)
    axes = fig.subplots(1, len(steps), squeeze=False)[0]
    phases, rewards = _step_labels(recording.spans), recording.rewards
    for index, (ax, frame, t) in enumerate(zip(axes, frames, steps, strict=True)):
        image = ax.imshow(frame, cmap=_cmap(), norm=norm, interpolation="nearest")
        ax.set_title(f"step t = {t}" + ("" if phases is None else f"\n{phases[t]}")
                     + ("" if rewards is None else f"\nreward {rewards[t]:g}"))
        ax.set_xticks([] if columns is None else columns, labels=[])
        ax.tick_params(axis="x", colors=CUE_COLOR, length=5, width=1.5, top=True, direction="inout")
        ax.set_yticks([])
        ax.set_xlabel("key index j")
        if index == 0:
            ax.set_ylabel("value index i")
    fig.colorbar(image, ax=list(axes), label=label, shrink=0.9)
    _caption(fig, caption, width)
    marks = None if columns is None else f"red ticks: cue columns j = {', '.join(str(j) for j in columns)}"
    heading = "\n".join(line for line in (recording.title, marks, note) if line)
    if heading:
        fig.suptitle(heading)
    fig.savefig(path, dpi=dpi)


def _draw_vector(recording: MemoryRecording, steps: list[int], path: Path, dpi: int, limit: float) -> None:
    """The state over time: x = t, y = unit; tick marks at ``steps`` (at phase changes when phases are known);
    a reward strip below when given."""
    width = PANEL_IN * VECTOR_PANELS + MARGIN_IN
    fig = _figure(width, HEIGHT_IN, dpi)
    rows = 1 if recording.rewards is None else 2
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True, height_ratios=[4, 1][:rows])[:, 0]
    image = axes[0].imshow(recording.memory.T, cmap=_cmap(), vmin=-limit, vmax=limit, aspect="auto",
                           origin="lower", interpolation="nearest")
    axes[0].set_ylabel("unit of h_t")
    axes[0].set_title("the state h_t at every step (one row per unit)")
    if recording.rewards is not None:
        axes[1].step(np.arange(recording.num_steps), recording.rewards, where="mid", color="k", lw=0.8)
        axes[1].set_ylabel("reward")
    if recording.spans is not None:
        shade_phases(axes[0], recording.spans, fill=False)  # lines and labels over the heatmap
        for ax in axes[1:]:
            shade_phases(ax, recording.spans, labels=False)
    axes[-1].set_xticks(steps if recording.spans is None else phase_ticks(recording.spans))  # phase-aware steps crowd
    axes[-1].set_xlabel(f"step t (all T = {recording.num_steps} steps)")
    fig.colorbar(image, ax=list(axes), label="h_t (state value)")
    if recording.title:
        fig.suptitle(recording.title)
    _caption(fig, "memory_steps_vector", width)
    fig.savefig(path, dpi=dpi)


def _draw_vanishing(fraction: np.ndarray, path: Path, dpi: int, title: str, spans: list[PhaseSpan] | None,
                    episodes: Sequence[np.ndarray] | None = None) -> None:
    """The vanishing fraction over the whole episode: x = 0..T−1 always, phases shaded when known; with
    ``episodes`` (the fractions of every evaluated episode) their mean ± std too, the paper's measure."""
    num_steps = fraction.size
    fig = _figure(*VANISHING_IN, dpi)
    ax = fig.subplots()
    if spans is not None:
        shade_phases(ax, spans)
    many = episodes is not None and len(episodes) > 1
    if many:
        mean, std, count = episode_mean(episodes)
        t = np.arange(mean.size)
        ax.fill_between(t, mean - std, mean + std, color="C1", alpha=0.25, linewidth=0)
        ax.plot(t, mean, color="C1", label=f"mean ± std over {len(episodes)} episodes"
                + ("" if count.min() == count.max() else " (fewer where episodes ended)"))
    ax.plot(np.arange(num_steps), fraction, color="C0", marker="." if num_steps == 1 else None,
            linewidth=0.8 if many else 1.5, label="the episode drawn" if many else None)
    if many:
        ax.legend(loc="lower right")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlim(*((-0.5, 0.5) if num_steps == 1 else (0, num_steps - 1)))
    ax.set_xticks(default_steps(num_steps, 6) if spans is None else phase_ticks(spans))
    ax.set_xlabel(f"step t (all T = {num_steps} steps)")
    ax.set_ylabel("share of entries with ∏C < 1")
    ax.set_title(r"vanishing: share of the entries of $\prod_{s \leq t} C_s$ below 1"
                 + (f"\n{title}" if title else ""))
    _caption(fig, "vanishing", VANISHING_IN[0])
    fig.savefig(path, dpi=dpi)


def _draw_retention_file(result: Retention, spans: list[PhaseSpan] | None, path: Path, dpi: int, title: str) -> None:
    num_steps = result.retained.size
    if spans is None:  # a cue window given by cue_steps: shade it as if it were a phase
        cue = result.cue_steps
        spans = [PhaseSpan(0, 0, cue - 1, f"cue steps 0..{cue - 1}"), PhaseSpan(1, cue, num_steps - 1, "after the cue")]
    fig = _figure(*RETENTION_IN, dpi)
    draw_retention(fig, result, spans, title)
    _caption(fig, "retention", RETENTION_IN[0])
    fig.savefig(path, dpi=dpi)


def _c_norm(zoom: float) -> TwoSlopeNorm:
    """Colours of C: white at 1 (keeps), blue below (forgets), red above, over 1 ± ``zoom``."""
    return TwoSlopeNorm(vmin=1.0 - zoom, vcenter=1.0, vmax=1.0 + zoom)


def _c_note(zoom: float) -> str | None:
    return None if zoom >= 1.0 else f"C's colours span 1 ± {zoom:g} (of its range 0..2; entries beyond at the ends)"


def _draw_gif(recording: MemoryRecording, frames: list[int], path: Path, dpi: int, limit: float,
              zoom: float | None = None) -> None:
    """M_t (and C_t beside it, colours over 1 ± ``zoom``) per frame; a vector state is revealed column by
    column."""
    memory, calibration, vector = recording.memory, recording.calibration, recording.memory.ndim == 2
    panels = VECTOR_PANELS if vector else 1 if calibration is None else 2
    fig = _figure(PANEL_IN * panels + MARGIN_IN, HEIGHT_IN, dpi)
    axes = fig.subplots(1, 1 if vector else panels, squeeze=False)[0]
    if vector:
        extent = (-0.5, 0.5, -0.5, memory.shape[1] - 0.5)
        image = axes[0].imshow(memory.T[:, :1], cmap=_cmap(), vmin=-limit, vmax=limit, aspect="auto",
                               origin="lower", interpolation="nearest", extent=extent)
        axes[0].set_xlim(-0.5, memory.shape[0] - 0.5)
        axes[0].set_xlabel("t")
        axes[0].set_ylabel("unit")
    else:
        image = axes[0].imshow(memory[0], cmap=_cmap(), vmin=-limit, vmax=limit, interpolation="nearest")
        axes[0].set_title("M")
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    if calibration is not None:
        zoom = zoom if zoom is not None else 1.0
        c_image = axes[1].imshow(calibration[0], cmap=_cmap(), norm=_c_norm(zoom), interpolation="nearest")
        axes[1].set_title("C" if zoom >= 1.0 else f"C (colours 1 ± {zoom:g})")
        fig.colorbar(c_image, ax=axes[1], shrink=0.8)
    for ax in axes if not vector else ():
        ax.set_xticks([])
        ax.set_yticks([])
    prefix, phases = f"{recording.title}\n" if recording.title else "", _step_labels(recording.spans)
    headings = {t: f"{prefix}t = {t}{'' if phases is None else f', {phases[t]}'}{_reward_text(recording.rewards, t)}"
                for t in frames}
    heading = fig.suptitle(max(headings.values(), key=len))  # the layout reserves room for the longest heading
    fig.draw_without_rendering()
    fig.set_layout_engine("none")  # freeze the layout: frames line up and draw faster
    writer = PillowWriter(fps=FPS)
    with writer.saving(fig, str(path), dpi):
        for t in frames:
            if vector:
                image.set_data(memory.T[:, : t + 1])
                image.set_extent((-0.5, t + 0.5, -0.5, memory.shape[1] - 0.5))
            else:
                image.set_data(memory[t])
            if calibration is not None:
                c_image.set_data(calibration[t])
            heading.set_text(headings[t])
            writer.grab_frame()


def _check_steps(steps: Sequence[int], num_steps: int) -> list[int]:
    checked = set()
    for step in steps:
        if isinstance(step, bool) or not isinstance(step, int | np.integer):
            raise ValueError(f"step {step!r} is not an integer")
        if not 0 <= step <= num_steps - 1:
            raise ValueError(f"step {step} outside the valid range [0, {num_steps - 1}] (T = {num_steps})")
        checked.add(int(step))
    if not 1 <= len(checked) <= MAX_PANELS:
        raise ValueError(f"steps: got {len(checked)} distinct steps, expected 1 to {MAX_PANELS}")
    return sorted(checked)


def draw_memory(recording: MemoryRecording, out_dir: Path, steps: Sequence[int] | None = None, *,
                dpi: int = 100, cue_steps: int | None = None) -> dict[str, Path]:
    """Draw one episode into ``out_dir`` (created if missing) and return file name → path.

    Files (sizes in the module docstring): ``memory_steps.png`` (M_t [H, H] at ``steps``, or the state [T, H]
    over time), ``memory.gif`` (all T steps, at most 300 frames, ``FPS`` frames/s), ``summary.json``, and with
    a calibration ``calibration_steps.png`` (C_t at ``steps``), ``vanishing.png`` and, when the cue phase is
    known, ``retention.png``. ``steps`` defaults to ``phase_steps`` (with phases) or ``default_steps(T)``, 8 at
    most; duplicates are dropped and the rest sorted. Colour limits for M are ±max|M| over the drawn steps (over
    all T for a vector state and in the GIF); C uses 1 ± r with white at 1 (``calibration_zoom``: r from the
    spread of |C − 1|, at most C's whole range 0..2). With ``recording.vanishing_episodes`` vanishing.png adds
    the mean ± std over those episodes. Non-finite values are drawn black and counted in summary.json.
    ``cue_steps``: the cue phase is steps 0..cue_steps−1 (in [1, T−1]); default: the first phase of
    ``recording.phases``, and no retention figure without phases. It needs a matrix memory with calibration.
    Raises ValueError before writing anything if a file it would write already exists (never overwrites),
    for steps outside [0, T-1], or for a ``cue_steps`` it cannot use.
    The files are written whole: into a hidden scratch directory in ``out_dir``, then moved into place
    together (``rllib_shm.files``); an interrupted drawing leaves none of them, and a second writer into
    ``out_dir`` while this one works is refused.
    """
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 1000:
        raise ValueError(f"dpi must be an integer in [10, 1000], got {dpi!r}")
    num_steps, calibration, spans = recording.num_steps, recording.calibration, recording.spans
    if steps is None:
        steps = default_steps(num_steps, 8) if spans is None else phase_steps(spans, 8)
    else:
        steps = _check_steps(steps, num_steps)
    frames = default_steps(num_steps, MAX_FRAMES)
    held, skipped = _retention(recording, cue_steps)
    calibration_only = ("calibration_steps.png", "vanishing.png")
    names = [name for name in FILES if (calibration is not None or name not in calibration_only)
             and (held is not None or name != "retention.png")]
    out_dir = Path(out_dir)
    paths = {name: out_dir / name for name in names}
    _check_free(paths)
    with claim_directory(out_dir, "out_dir"), scratch_directory(out_dir, "drawing") as scratch:
        _check_free(paths)  # again, now that no other writer can be at work here
        drafts = _write_files(recording, {name: scratch / name for name in names}, steps, frames, dpi, held, skipped)
        publish({drafts[name]: paths[name] for name in names})
    return paths


def _check_free(paths: dict[str, Path]) -> None:
    for path in paths.values():
        if path.exists():
            raise ValueError(f"{path} already exists; refusing to overwrite results (choose another out_dir)")


def _write_files(recording: MemoryRecording, paths: dict[str, Path], steps: list[int], frames: list[int], dpi: int,
                 held: Retention | None, skipped: str | None) -> dict[str, Path]:
    """Every file of ``draw_memory`` written to ``paths`` (name → path, in a scratch directory)."""
    num_steps, calibration, spans, names = recording.num_steps, recording.calibration, recording.spans, list(paths)
    memory = recording.memory
    limit = (_max_abs(memory[steps]) if memory.ndim == 3 else _max_abs(memory)) or 1.0  # ±limit in memory_steps
    with matplotlib.rc_context(RC):
        zoom = None if calibration is None else calibration_zoom(calibration)  # C's colours: 1 ± zoom
        fraction = _draw_all(recording, steps, frames, paths, dpi, limit, held, zoom)

    fields = {"memory": memory, "calibration": calibration, "rewards": recording.rewards}
    non_finite = {name: int(a.size - np.count_nonzero(np.isfinite(a))) for name, a in fields.items() if a is not None}
    summary = {
        "title": recording.title,
        "kind": "matrix" if memory.ndim == 3 else "vector",
        "T": num_steps,
        "H": recording.size,
        "steps": steps,
        "gif_steps": frames,
        "dpi": dpi,
        "max_abs_memory": _max_abs(memory),  # over all T, finite entries only; None if none is finite
        "color_limit_memory_steps": limit,
        # calibration_steps.png and the GIF colour C over 1 ± r (``calibration_zoom``); None without calibration
        "color_range_calibration": None if zoom is None else [1.0 - zoom, 1.0 + zoom],
        "episode_return": None if recording.rewards is None else _finite_or_none(float(np.sum(recording.rewards))),
        "phases": None if spans is None else [{"phase": s.phase, "label": s.label, "steps": [s.start, s.stop]}
                                              for s in spans],
        "vanishing_fraction": None if fraction is None else [float(f) for f in fraction],
        "final_vanishing_fraction": None if fraction is None else float(fraction[-1]),
        # over every evaluated episode (``vanishing_episodes``): per step, the mean over the episodes that long
        "vanishing_episodes": None if recording.vanishing_episodes is None else len(recording.vanishing_episodes),
        "vanishing_fraction_episode_mean": None if recording.vanishing_episodes is None else [
            float(f) for f in episode_mean(recording.vanishing_episodes)[0]],
        "retention": None if held is None else held.summary(),
        "retention_skipped": skipped,  # why retention.png was not drawn, or None
        "non_finite": sum(non_finite.values()),
        "non_finite_by_field": non_finite,
        "files": names,
    }
    lines = [f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in summary.items()]
    with open(paths["summary.json"], "x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
        handle.write("{\n" + ",\n".join(lines) + "\n}\n")
    return paths


def _retention(recording: MemoryRecording, cue_steps: int | None) -> tuple[Retention | None, str | None]:
    """(the retention measures, None), or (None, why they cannot be computed); raises for a bad ``cue_steps``."""
    num_steps, spans = recording.num_steps, recording.spans
    matrix = recording.memory.ndim == 3 and recording.calibration is not None
    if cue_steps is not None:
        if isinstance(cue_steps, bool) or not isinstance(cue_steps, int | np.integer):
            raise ValueError(f"cue_steps: got {cue_steps!r}, expected an integer")
        if not 1 <= cue_steps <= num_steps - 1:
            raise ValueError(f"cue_steps must be in [1, T-1] = [1, {num_steps - 1}], got {cue_steps}")
        if not matrix:
            raise ValueError("cue_steps: the retention figure needs a matrix memory with calibration (SHM)")
    elif not matrix:
        return None, "needs a matrix memory with calibration (SHM)"
    elif spans is None:
        return None, "no cue phase known: record the episode's phases or pass cue_steps"
    elif len(spans) < 2:
        return None, "a single phase: no step after the cue phase"
    cue = int(cue_steps) if cue_steps is not None else spans[0].stop + 1
    final = spans[-1].start if spans is not None and len(spans) > 1 and spans[-1].start >= cue else None
    return retention(recording.memory, recording.calibration, cue, final), None


def _draw_all(recording: MemoryRecording, steps: list[int], frames: list[int], paths: dict[str, Path], dpi: int,
              limit: float, held: Retention | None,
              zoom: float | None) -> np.ndarray | None:
    """Write every image; return the vanishing fraction [T] (None without calibration)."""
    memory, calibration = recording.memory, recording.calibration
    columns = None if held is None else held.columns
    if memory.ndim == 3:
        _draw_grid(memory[steps], steps, paths["memory_steps.png"], dpi, recording,
                   matplotlib.colors.Normalize(-limit, limit), M_LABEL, columns,
                   "memory_steps" if columns is not None else "memory_steps_plain")
    else:
        _draw_vector(recording, steps, paths["memory_steps.png"], dpi, limit)
    _draw_gif(recording, frames, paths["memory.gif"], dpi, _max_abs(memory) or 1.0, zoom)
    if calibration is None:
        return None
    _draw_grid(calibration[steps], steps, paths["calibration_steps.png"], dpi, recording, _c_norm(zoom),
               C_LABEL, columns, "calibration_steps" if columns is not None else "calibration_steps_plain",
               _c_note(zoom))
    fraction = vanishing_fraction(calibration)
    _draw_vanishing(fraction, paths["vanishing.png"], dpi, recording.title, recording.spans,
                    recording.vanishing_episodes)
    if held is not None:
        _draw_retention_file(held, recording.spans, paths["retention.png"], dpi, recording.title)
    return fraction
