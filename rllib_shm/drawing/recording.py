"""One episode of a memory, as drawn: ``MemoryRecording`` (M_t, C_t, rewards, phases) and the
vanishing measure of its calibration.

Dimension letters: T time (steps of the episode), H memory size. An SHM recording holds the matrix
memory M_t [T, H, H] and its calibration C_t [T, H, H] (entries in (0, 2): < 1 forgets, = 1 keeps,
> 1 strengthens); a vector-state recording (e.g. a GRU's h_t) holds [T, H] and no calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rllib_shm.drawing.timeline import PhaseSpan, phase_spans


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class MemoryRecording:
    """One episode of a memory. Arrays are converted with ``np.asarray`` (float if not already).

    memory:      M_t [T, H, H] (SHM matrix memory) or h_t [T, H] (a vector state).
    calibration: C_t [T, H, H] in (0, 2), SHM only; None otherwise.
    rewards:     r_t [T] per-step rewards, optional (shown in titles / a strip).
    title:       a line drawn above every figure.
    phases:      [T] integer phase ids ≥ 0, the phase of the observation acted on at step t (``info["phase"]``),
                 optional; stored as int64.
    phase_names: phase id → name (a mapping, or a sequence indexed by id), optional: "phase 0 (cue)".
    vanishing_episodes: per evaluated episode (this one and others of the same evaluation), the vanishing
                 fraction [T_e] of its calibration (``vanishing_fraction``), optional: vanishing.png then
                 draws their mean over episodes, the paper's measure (lengths may differ).
    """

    memory: np.ndarray
    calibration: np.ndarray | None
    rewards: np.ndarray | None = None
    title: str = ""
    phases: np.ndarray | None = None
    phase_names: Mapping[int, str] | Sequence[str] | None = None
    vanishing_episodes: Sequence[np.ndarray] | None = None

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
        if self.phases is not None:
            object.__setattr__(self, "phases", _as_phases(self.phases, memory.shape[0]))
        if self.phase_names is not None:
            object.__setattr__(self, "phase_names", _as_names(self.phase_names))
        if self.vanishing_episodes is not None:
            if self.calibration is None:
                raise ValueError("vanishing_episodes: needs a calibration (an SHM recording)")
            object.__setattr__(self, "vanishing_episodes", _as_fractions(self.vanishing_episodes))

    @property
    def num_steps(self) -> int:
        """T."""
        return int(self.memory.shape[0])

    @property
    def size(self) -> int:
        """H."""
        return int(self.memory.shape[1])

    @property
    def spans(self) -> list[PhaseSpan] | None:
        """The phases as spans of equal ids (``timeline.phase_spans``), or None without phases."""
        return None if self.phases is None else phase_spans(self.phases, self.phase_names)


def _as_phases(value: object, num_steps: int) -> np.ndarray:
    phases = np.asarray(value)
    if phases.dtype.kind not in "iu":
        raise ValueError(f"phases: got dtype {phases.dtype} (shape {phases.shape}), expected integers")
    if phases.shape != (num_steps,):
        raise ValueError(f"phases: got shape {phases.shape}, expected [T] = {(num_steps,)}")
    if phases.min() < 0:
        raise ValueError(f"phases: got {int(phases.min())}, expected phase ids ≥ 0")
    return phases.astype(np.int64)


def _as_fractions(value: object) -> tuple[np.ndarray, ...]:
    if isinstance(value, np.ndarray | str) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"vanishing_episodes: got {type(value).__name__}, expected a non-empty sequence of [T_e] "
                         "arrays (one per episode)")
    fractions = tuple(np.asarray(f, dtype=np.float64) for f in value)
    for index, fraction in enumerate(fractions):
        if fraction.ndim != 1 or not fraction.size or not np.all((fraction >= 0) & (fraction <= 1)):
            raise ValueError(f"vanishing_episodes[{index}]: got shape {fraction.shape}, expected [T_e] fractions in "
                             "[0, 1]")
    return fractions


def episode_mean(fractions: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, episodes) per step t over the episodes at least t + 1 steps long: [T_max] each.

    >>> episode_mean([np.array([0.0, 0.5]), np.array([1.0])])
    (array([0.5, 0.5]), array([0.5, 0. ]), array([2, 1]))
    """
    longest = max(f.size for f in fractions)
    padded = np.full((len(fractions), longest), np.nan)
    for row, fraction in zip(padded, fractions, strict=True):
        row[: fraction.size] = fraction
    count = np.sum(np.isfinite(padded), axis=0)
    return np.nanmean(padded, axis=0), np.nanstd(padded, axis=0), count


def _as_names(value: object) -> dict[int, str]:
    pairs = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, Sequence) else None
    if pairs is None or isinstance(value, str):
        raise ValueError(f"phase_names: got {type(value).__name__}, expected a mapping id → name or a sequence")
    names = dict(pairs)
    for key, name in names.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or key < 0 or not isinstance(name, str):
            raise ValueError(f"phase_names: got {key!r}: {name!r}, expected phase id (int ≥ 0) → name (str)")
    return {int(key): name for key, name in names.items()}


def _as_float(field: str, value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return array if array.dtype.itemsize >= 4 else array.astype(np.float32)  # matplotlib has no float16
    if array.dtype.kind not in "biu":
        raise ValueError(f"{field}: got dtype {array.dtype} (shape {array.shape}), expected a real numeric array")
    return array.astype(np.float64)


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


def calibration_zoom(values: np.ndarray, quantile: float = 0.99) -> float:
    """Half-width r of the range 1 ± r that shows calibration ``values`` (any shape): the ``quantile`` of
    |C − 1| over the finite entries, rounded up to two significant digits, within [0.01, 1].

    C lives in (0, 2), but a trained SHM keeps most entries within a few percent of 1; drawn on 0..2 they all
    look white (or flat), and which columns keep and which forget is lost. Entries beyond 1 ± r are drawn at
    the ends of the range.

    >>> calibration_zoom(np.array([1.0, 1.02, 0.97, 1.001])), calibration_zoom(np.array([0.1, 1.9]))
    (0.03, 0.9)
    >>> calibration_zoom(np.ones(3)), calibration_zoom(np.array([0.0, 2.0, np.nan]))
    (0.01, 1.0)
    """
    deviation = np.abs(np.asarray(values, dtype=np.float64) - 1.0)
    deviation = deviation[np.isfinite(deviation)]
    if not deviation.size:
        return 1.0
    r = float(np.quantile(deviation, quantile))
    if r <= 0.0:
        return 0.01
    digits = 1 - math.floor(math.log10(r))  # two significant digits
    return min(max(math.ceil(round(r * 10**digits, 6)) / 10**digits, 0.01), 1.0)
