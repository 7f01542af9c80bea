"""What a memory did over one episode: heatmaps, an animation and the vanishing measure (paper Fig. 3c).

Dimension letters: T time (steps of the episode), H memory size. An SHM recording holds the matrix
memory M_t [T, H, H] and its calibration C_t [T, H, H] (entries in (0, 2): < 1 forgets, = 1 keeps,
> 1 strengthens); a vector-state recording (e.g. a GRU's h_t) holds [T, H] and no calibration.

Figure sizes are deterministic (no ``bbox_inches="tight"``), with ``n`` panels at ``dpi``:

- ``memory_steps.png``, ``calibration_steps.png``: width = round(dpi * (2.0 * n + 1.0)) px,
  height = round(dpi * 2.6) px, n = number of steps drawn (each panel 2.0 in, plus 1.0 in for
  margins and the shared colorbar).
- ``memory.gif`` frames: the same formula with n = 2 (M_t and C_t) when calibration is given, else n = 1.
- A vector state counts as n = 3 (one wide time × units panel) in both files.
- ``vanishing.png``: width = round(dpi * 5.0) px, height = round(dpi * 3.0) px.

Drawing uses bare ``matplotlib.figure.Figure`` objects rendered by Agg in ``savefig``: this module never imports
pyplot and leaves matplotlib's backend as it finds it, so sizes and pixels are the same under any backend.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

PANEL_IN = 2.0  # width of one panel, inches
MARGIN_IN = 1.0  # margins + colorbar, inches
HEIGHT_IN = 2.6  # height of grid figures and GIF frames, inches
VECTOR_PANELS = 3  # a vector state's time × units heatmap is as wide as this many panels
VANISHING_IN = (5.0, 3.0)  # width, height of vanishing.png, inches
MAX_PANELS = 32  # steps per grid figure
MAX_FRAMES = 300  # GIF frames; longer episodes are subsampled evenly
FPS = 8
RC = {"font.size": 7, "axes.titlesize": 7, "figure.titlesize": 8}  # small panels, small text
C_LABEL = "C (<1 forgets, >1 strengthens)"
FILES = ("memory_steps.png", "calibration_steps.png", "memory.gif", "vanishing.png", "summary.json")


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class MemoryRecording:
    """One episode of a memory. Arrays are converted with ``np.asarray`` (float if not already).

    memory:      M_t [T, H, H] (SHM matrix memory) or h_t [T, H] (a vector state).
    calibration: C_t [T, H, H] in (0, 2), SHM only; None otherwise.
    rewards:     r_t [T] per-step rewards, optional (shown in titles / a strip).
    title:       a line drawn above every figure.
    """

    memory: np.ndarray
    calibration: np.ndarray | None
    rewards: np.ndarray | None = None
    title: str = ""

    def __post_init__(self) -> None:
        memory = _as_float("memory", self.memory)
        square = memory.ndim == 2 or (memory.ndim == 3 and memory.shape[1] == memory.shape[2])
        if not square or 0 in memory.shape:
            raise ValueError(f"memory: got shape {memory.shape}, expected [T, H, H] (matrix) or [T, H] (vector)")
        object.__setattr__(self, "memory", memory)
        if self.calibration is not None:
            calibration = _as_float("calibration", self.calibration)
            if memory.ndim != 3 or calibration.shape != memory.shape:
                expected = f"[T, H, H] = {memory.shape}" if memory.ndim == 3 else "None for a vector state [T, H]"
                raise ValueError(f"calibration: got shape {calibration.shape}, expected {expected} matching memory")
            object.__setattr__(self, "calibration", calibration)
        if self.rewards is not None:
            rewards = _as_float("rewards", self.rewards)
            if rewards.shape != (memory.shape[0],):
                raise ValueError(f"rewards: got shape {rewards.shape}, expected [T] = {(memory.shape[0],)}")
            object.__setattr__(self, "rewards", rewards)
        if not isinstance(self.title, str):
            raise ValueError(f"title: got {type(self.title).__name__}, expected str")

    @property
    def num_steps(self) -> int:
        """T."""
        return int(self.memory.shape[0])

    @property
    def size(self) -> int:
        """H."""
        return int(self.memory.shape[1])


def _as_float(field: str, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return array if array.dtype.itemsize >= 4 else array.astype(np.float32)  # matplotlib has no float16
    if array.dtype.kind not in "biu":
        raise ValueError(f"{field}: got dtype {array.dtype} (shape {array.shape}), expected a real numeric array")
    return array.astype(np.float64)


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


def vanishing_fraction(calibration: np.ndarray) -> np.ndarray:
    """Fraction of entries of the cumulative product ∏_{i≤t} C_i that are < 1, per step t.

    calibration: C [T, H, H] (any [T, ...] works) → [T] float64 in [0, 1]. Computed in log space (a running sum
    of log C in float64), so long products neither underflow to 0 nor overflow to inf. Entries whose log is
    NaN (C < 0 or NaN) count as not below 1; C = 0 gives log C = -inf, i.e. vanished for good.
    """
    calibration = np.asarray(calibration)
    if calibration.ndim < 1 or calibration.shape[0] < 1:
        raise ValueError(f"calibration: got shape {calibration.shape}, expected [T, ...] with T ≥ 1")
    fraction = np.zeros(calibration.shape[0], dtype=np.float64)
    log_product = np.zeros(calibration.shape[1:], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(calibration.shape[0]):  # running sum: O(H²) memory instead of a [T, H, H] cumsum
            log_product += np.log(calibration[t].astype(np.float64))
            fraction[t] = np.mean(log_product < 0.0)
    return fraction


def _figure(inches_wide: float, inches_high: float, dpi: int) -> Figure:
    """A figure of exactly round(dpi * inches) pixels each way (Agg truncates, so add a quarter pixel).

    A bare ``Figure``, never registered with pyplot: nothing to close, and the global backend is left alone
    (``savefig`` renders PNG and the GIF's RGBA frames with Agg whatever the backend).
    """
    width, height = round(dpi * inches_wide), round(dpi * inches_high)
    return Figure(figsize=((width + 0.25) / dpi, (height + 0.25) / dpi), dpi=dpi, layout="constrained")


def _cmap(name: str = "RdBu_r") -> matplotlib.colors.Colormap:
    return matplotlib.colormaps[name].with_extremes(bad="black")  # non-finite entries show black


def _max_abs(values: np.ndarray) -> float | None:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _reward_text(rewards: np.ndarray | None, t: int) -> str:
    return "" if rewards is None else f", r = {rewards[t]:g}, return = {np.sum(rewards[: t + 1]):g}"


def _draw_grid(frames: np.ndarray, steps: list[int], path: Path, dpi: int, title: str, rewards: np.ndarray | None,
               norm: matplotlib.colors.Normalize, label: str) -> None:
    """One row of heatmaps, frames [n, H, H] at ``steps``, one shared colorbar."""
    fig = _figure(PANEL_IN * len(steps) + MARGIN_IN, HEIGHT_IN, dpi)
    axes = fig.subplots(1, len(steps), squeeze=False)[0]
    for ax, frame, t in zip(axes, frames, steps, strict=True):
        image = ax.imshow(frame, cmap=_cmap(), norm=norm, interpolation="nearest")
        ax.set_title(f"t = {t}" + ("" if rewards is None else f"\nr = {rewards[t]:g}"))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=list(axes), label=label, shrink=0.9)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=dpi)


def _draw_vector(recording: MemoryRecording, steps: list[int], path: Path, dpi: int, limit: float) -> None:
    """The state over time: x = t, y = unit; tick marks at ``steps``; a reward strip below when given."""
    fig = _figure(PANEL_IN * VECTOR_PANELS + MARGIN_IN, HEIGHT_IN, dpi)
    rows = 1 if recording.rewards is None else 2
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True, height_ratios=[4, 1][:rows])[:, 0]
    image = axes[0].imshow(recording.memory.T, cmap=_cmap(), vmin=-limit, vmax=limit, aspect="auto",
                           origin="lower", interpolation="nearest")
    axes[0].set_ylabel("unit")
    if recording.rewards is not None:
        axes[1].step(np.arange(recording.num_steps), recording.rewards, where="mid", color="k", lw=0.8)
        axes[1].set_ylabel("r")
    axes[-1].set_xticks(steps)
    axes[-1].set_xlabel("t")
    fig.colorbar(image, ax=list(axes), label="state")
    if recording.title:
        fig.suptitle(recording.title)
    fig.savefig(path, dpi=dpi)


def _draw_vanishing(fraction: np.ndarray, path: Path, dpi: int, title: str) -> None:
    fig = _figure(*VANISHING_IN, dpi)
    ax = fig.subplots()
    ax.plot(np.arange(fraction.size), fraction, color="C0")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("t")
    ax.set_ylabel("fraction of entries < 1")
    ax.set_title("fraction of entries of ∏C below 1" + (f"\n{title}" if title else ""))
    fig.savefig(path, dpi=dpi)


def _draw_gif(recording: MemoryRecording, frames: list[int], path: Path, dpi: int, limit: float) -> None:
    """M_t (and C_t beside it) per frame; a vector state is revealed column by column."""
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
        c_image = axes[1].imshow(calibration[0], cmap=_cmap(), norm=TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0),
                                 interpolation="nearest")
        axes[1].set_title("C")
        fig.colorbar(c_image, ax=axes[1], shrink=0.8)
    for ax in axes if not vector else ():
        ax.set_xticks([])
        ax.set_yticks([])
    prefix = f"{recording.title}\n" if recording.title else ""
    last = frames[-1]  # the layout reserves room for the longest heading
    heading = fig.suptitle(f"{prefix}t = {last}{_reward_text(recording.rewards, last)}")
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
            heading.set_text(f"{prefix}t = {t}{_reward_text(recording.rewards, t)}")
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
                dpi: int = 100) -> dict[str, Path]:
    """Draw one episode into ``out_dir`` (created if missing) and return file name → path.

    Files (sizes in the module docstring): ``memory_steps.png`` (M_t [H, H] at ``steps``, or the state [T, H]
    over time), ``memory.gif`` (all T steps, at most 300 frames, ``FPS`` frames/s), ``summary.json``, and with
    a calibration ``calibration_steps.png`` (C_t at ``steps``) and ``vanishing.png``. ``steps`` defaults to
    ``default_steps(T)``; duplicates are dropped and the rest sorted. Colour limits for M are ±max|M| over the
    drawn steps (over all T for a vector state and in the GIF); C uses [0, 2] with white at 1. Non-finite values
    are drawn black and counted in summary.json.
    Raises ValueError before writing anything if a file it would write already exists (never overwrites),
    or for steps outside [0, T-1].
    """
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 1000:
        raise ValueError(f"dpi must be an integer in [10, 1000], got {dpi!r}")
    num_steps, calibration = recording.num_steps, recording.calibration
    steps = default_steps(num_steps, 8) if steps is None else _check_steps(steps, num_steps)
    frames = default_steps(num_steps, MAX_FRAMES)
    calibration_only = ("calibration_steps.png", "vanishing.png")
    names = [name for name in FILES if calibration is not None or name not in calibration_only]
    out_dir = Path(out_dir)
    paths = {name: out_dir / name for name in names}
    for path in paths.values():
        if path.exists():
            raise ValueError(f"{path} already exists; refusing to overwrite results (choose another out_dir)")
    out_dir.mkdir(parents=True, exist_ok=True)

    memory = recording.memory
    limit = (_max_abs(memory[steps]) if memory.ndim == 3 else _max_abs(memory)) or 1.0  # ±limit in memory_steps
    with matplotlib.rc_context(RC):
        fraction = _draw_all(recording, steps, frames, paths, dpi, limit)

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
        "episode_return": None if recording.rewards is None else _finite_or_none(float(np.sum(recording.rewards))),
        "vanishing_fraction": None if fraction is None else [float(f) for f in fraction],
        "final_vanishing_fraction": None if fraction is None else float(fraction[-1]),
        "non_finite": sum(non_finite.values()),
        "non_finite_by_field": non_finite,
        "files": names,
    }
    lines = [f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in summary.items()]
    with open(paths["summary.json"], "x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
        handle.write("{\n" + ",\n".join(lines) + "\n}\n")
    return paths


def _draw_all(recording: MemoryRecording, steps: list[int], frames: list[int], paths: dict[str, Path], dpi: int,
              limit: float) -> np.ndarray | None:
    """Write every image; return the vanishing fraction [T] (None without calibration)."""
    memory, calibration = recording.memory, recording.calibration
    if memory.ndim == 3:
        _draw_grid(memory[steps], steps, paths["memory_steps.png"], dpi, recording.title, recording.rewards,
                   matplotlib.colors.Normalize(-limit, limit), "M")
    else:
        _draw_vector(recording, steps, paths["memory_steps.png"], dpi, limit)
    _draw_gif(recording, frames, paths["memory.gif"], dpi, _max_abs(memory) or 1.0)
    if calibration is None:
        return None
    _draw_grid(calibration[steps], steps, paths["calibration_steps.png"], dpi, recording.title, recording.rewards,
               TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=2.0), C_LABEL)
    fraction = vanishing_fraction(calibration)
    _draw_vanishing(fraction, paths["vanishing.png"], dpi, recording.title)
    return fraction

