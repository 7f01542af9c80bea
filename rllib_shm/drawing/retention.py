"""Does an SHM memory keep what it wrote in the cue phase? Cue columns, their calibration, and the content held.

Dimension letters: T time, H memory size, K number of cue columns. SHM writes M_t = M_{t−1} ⊙ C_t + U_t with
U_t = η v_t ⊗ k_t and reads h_t = M_t q_t, so column j of M is addressed by key/query index j: what was
written under key j is read back by a query that selects j, and it survives while C_t[:, j] stays near 1.

From a recording (M_t, C_t for t = 0..T−1, starting at reset with the zero state M_{−1} = 0) the writes are
recovered as U_t = M_t − C_t ⊙ M_{t−1}. This is exact for SHM unless its optional clamp of M cut a value.
The cue phase is steps 0..c−1 (c = ``cue_steps``); the hold phase is c..f−1, where f is the first step
of the final phase (f = T when there is none).

- cue columns: the K = max(1, H // 8) columns j with the largest write energy Σ_{t<c} Σ_i U_t[i, j]²
  (ties: the lower index), i.e. where the cue phase wrote most;
- (a) C_t over the cue columns vs the other columns: mean and quartiles over the entries, per step;
- (b) log ∏_{s≤t} C_s (the product of vanishing.png, from t = 0) in float64 log space: median and
  quartiles over the entries of the cue columns vs the others;
- (c) retained fraction ‖M_t[:, cue]‖_F / ‖M_{c−1}[:, cue]‖_F (later writes into those columns count too),
  and the carried fraction ‖(∏_{c≤s≤t} C_s ⊙ M_{c−1})[:, cue]‖_F / ‖M_{c−1}[:, cue]‖_F: what of the
  cue-phase content the calibration alone keeps (no later writes), 1 at t = c−1, undefined before.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rllib_shm.drawing.recording import calibration_zoom
from rllib_shm.drawing.timeline import PhaseSpan, phase_ticks, shade_phases

QUARTILES = (0.25, 0.75)
GROUPS = ("cue", "other")  # row 0 / row 1 of the per-group arrays
COLORS = ("C3", "C0")


def cue_column_count(size: int) -> int:
    """K = max(1, H // 8) cue columns for a memory of size H."""
    return max(1, size // 8)


def writes(memory: np.ndarray, calibration: np.ndarray, steps: int | None = None) -> np.ndarray:
    """U_t = M_t − C_t ⊙ M_{t−1} with M_{−1} = 0, for t < ``steps`` (default T): [steps, H, H] float64."""
    memory = np.asarray(memory[:steps], dtype=np.float64)
    previous = np.concatenate([np.zeros_like(memory[:1]), memory[:-1]])
    return memory - np.asarray(calibration[: memory.shape[0]], dtype=np.float64) * previous


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Retention:
    """What :func:`retention` measured. Per-group arrays have a leading axis (cue, other); without other
    columns (H = 1) the "other" rows are NaN."""

    cue_steps: int  # c: the cue phase is steps 0..c−1
    final_start: int | None  # f: the first step of the final phase (None: no final phase, the hold runs to T−1)
    columns: np.ndarray  # [K] the cue columns, ascending
    write_energy: np.ndarray  # [H] Σ_{t<c} Σ_i U_t[i, j]²
    calibration_mean: np.ndarray  # [2, T]
    calibration_quartiles: np.ndarray  # [2, 2, T] (group, q25/q75, t)
    log_product_median: np.ndarray  # [2, T] median of log ∏_{s≤t} C_s
    log_product_quartiles: np.ndarray  # [2, 2, T]
    retained: np.ndarray  # [T] ‖M_t[:, cue]‖_F / ‖M_{c−1}[:, cue]‖_F (NaN if the reference is 0)
    carried: np.ndarray  # [T] NaN before c−1

    @property
    def hold_stop(self) -> int:
        """One past the last hold step: f, or T without a final phase."""
        return self.retained.size if self.final_start is None else self.final_start

    def summary(self) -> dict:
        """JSON-ready numbers (None where undefined or not finite)."""
        c, f, energy = self.cue_steps, self.hold_stop, self.write_energy
        hold = slice(c, f)
        share = energy[self.columns].sum() / energy.sum() if energy.sum() > 0 else math.nan
        at_final = self.final_start

        def pair(values: np.ndarray) -> dict:
            return {group: _number(value) for group, value in zip(GROUPS, values, strict=True)}

        return {
            "K": int(self.columns.size),
            "cue_columns": [int(j) for j in self.columns],
            "cue_steps": [0, c - 1],
            "hold_steps": [c, f - 1] if f > c else None,
            "final_start": self.final_start,
            "cue_write_share": _number(share),  # of the cue phase's write energy, in the cue columns
            "mean_calibration_hold": pair(self.calibration_mean[:, hold].mean(axis=1)) if f > c else None,
            "median_log_product_end_of_hold": pair(self.log_product_median[:, f - 1]) if f > c else None,
            "retained_fraction_at_final_start": None if at_final is None else _number(self.retained[at_final]),
            "retained_fraction_at_end": _number(self.retained[-1]),
            "carried_fraction_at_final_start": None if at_final is None else _number(self.carried[at_final]),
            "carried_fraction_at_end": _number(self.carried[-1]),
        }


def _number(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def retention(memory: np.ndarray, calibration: np.ndarray, cue_steps: int,
              final_start: int | None = None) -> Retention:
    """Measure retention of the cue phase (steps 0..``cue_steps``−1) in M [T, H, H] under C [T, H, H].

    ``final_start``: first step of the final phase (in [cue_steps, T−1]), or None. Raises ValueError
    unless 1 ≤ cue_steps ≤ T−1 (there must be a step after the cue phase).
    """
    num_steps, size = memory.shape[:2]
    if not 1 <= cue_steps <= num_steps - 1:
        raise ValueError(f"cue_steps must be in [1, T-1] = [1, {num_steps - 1}], got {cue_steps}")
    if final_start is not None and not cue_steps <= final_start <= num_steps - 1:
        raise ValueError(f"final_start must be in [cue_steps, T-1] = [{cue_steps}, {num_steps - 1}], got {final_start}")
    energy = np.sum(writes(memory, calibration, cue_steps) ** 2, axis=(0, 1))  # [H]
    columns = np.sort(np.argsort(-energy, kind="stable")[: cue_column_count(size)])
    is_cue = np.zeros(size, dtype=bool)
    is_cue[columns] = True

    calibration_mean = np.full((2, num_steps), np.nan)
    calibration_quartiles = np.full((2, 2, num_steps), np.nan)
    log_median = np.full((2, num_steps), np.nan)
    log_quartiles = np.full((2, 2, num_steps), np.nan)
    log_product = np.zeros((size, size), dtype=np.float64)
    reference = np.asarray(memory[cue_steps - 1][:, is_cue], dtype=np.float64)
    reference_norm = np.linalg.norm(reference)
    log_carry = np.zeros_like(reference)
    retained, carried = np.full(num_steps, np.nan), np.full(num_steps, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in range(num_steps):  # running sums: O(H²) memory, as vanishing_fraction
            c_t = np.asarray(calibration[t], dtype=np.float64)
            log_product += np.log(c_t)
            for group, mask in enumerate((is_cue, ~is_cue)):
                if mask.any():
                    calibration_mean[group, t] = c_t[:, mask].mean()
                    calibration_quartiles[group, :, t] = np.quantile(c_t[:, mask], QUARTILES)
                    log_median[group, t] = np.nanmedian(log_product[:, mask])
                    log_quartiles[group, :, t] = np.nanquantile(log_product[:, mask], QUARTILES)
            if reference_norm > 0:
                retained[t] = np.linalg.norm(np.asarray(memory[t][:, is_cue], dtype=np.float64)) / reference_norm
                if t >= cue_steps:
                    log_carry += np.log(c_t[:, is_cue])
                if t >= cue_steps - 1:
                    carried[t] = np.linalg.norm(np.exp(log_carry) * reference) / reference_norm
    return Retention(cue_steps, final_start, columns, energy, calibration_mean, calibration_quartiles,
                     log_median, log_quartiles, retained, carried)


def draw_retention(fig, result: Retention, spans: Sequence[PhaseSpan], title: str = "") -> None:
    """Fill ``fig`` (a bare matplotlib Figure) with panels (a), (b), (c) stacked over a shared t axis 0..T−1,
    with ``spans`` shaded on each (labels on the top panel)."""
    num_steps, t = result.retained.size, np.arange(result.retained.size)
    axes = fig.subplots(3, 1, sharex=True)
    k = result.columns.size
    names = (f"cue columns (K = {k})", f"other columns ({result.write_energy.size - k})")
    for group, (name, color) in enumerate(zip(names, COLORS, strict=True)):
        axes[0].fill_between(t, *result.calibration_quartiles[group], color=color, alpha=0.25, lw=0)
        axes[0].plot(t, result.calibration_mean[group], color=color, lw=1.0, label=name)
        axes[1].fill_between(t, *result.log_product_quartiles[group], color=color, alpha=0.25, lw=0)
        axes[1].plot(t, result.log_product_median[group], color=color, lw=1.0)
    axes[0].axhline(1.0, color="k", lw=0.6, ls=":")
    zoom = calibration_zoom(np.concatenate([result.calibration_quartiles.ravel(), result.calibration_mean.ravel()]),
                            quantile=1.0)  # C lives in (0, 2); a trained SHM's quartiles sit within a few % of 1
    axes[0].set_ylim(1.0 - 1.1 * zoom, 1.0 + 1.1 * zoom)
    axes[0].set_ylabel("C_t (1 keeps, < 1 forgets)")
    axes[0].set_title("(a) calibration on the cue vs the other columns: mean, quartile band"
                      + ("" if zoom >= 1.0 else f"\n(y zoomed to 1 ± {1.1 * zoom:.2g} of C's range 0..2)"))
    axes[0].legend(loc="lower right")
    axes[1].axhline(0.0, color="k", lw=0.6, ls=":")
    axes[1].set_ylabel(r"$\log \prod_{s \leq t} C_s$ (0 = kept)")
    axes[1].set_title("(b) accumulated calibration: median, quartile band (0 = kept, < 0 = vanishing)")
    axes[2].plot(t, result.retained, color="C3", lw=1.0,
                 label=r"held: $\|M_t[:, cue]\| \,/\, \|M_{c-1}[:, cue]\|$")
    axes[2].plot(t, result.carried, color="C3", lw=1.0, ls="--", label="carried by C alone (no later writes)")
    axes[2].axhline(1.0, color="k", lw=0.6, ls=":")
    positive = np.concatenate([result.retained, result.carried])
    if np.any(np.isfinite(positive) & (positive > 0)):
        axes[2].set_yscale("log")  # halving and doubling sit symmetric around 1
    else:
        axes[2].text(0.5, 0.5, "no cue-phase content: ‖M_c−1[:, cue]‖ = 0", transform=axes[2].transAxes,
                     ha="center", va="center")
    axes[2].set_ylabel("share held (log scale)")
    axes[2].set_title(f"(c) cue-phase content still in memory (1 at t = {result.cue_steps - 1}, the end of the cue)")
    axes[2].legend(loc="lower left")
    for index, ax in enumerate(axes):
        shade_phases(ax, spans, labels=index == 0)
    axes[2].set_xlim(0, max(num_steps - 1, 1))
    axes[2].set_xticks(phase_ticks(spans))
    axes[2].set_xlabel(f"step t (all T = {num_steps} steps)")
    columns = ", ".join(str(j) for j in result.columns)
    heading = (f"Is the cue kept? Cue columns j = {columns}: the {k} written most in the cue phase "
               f"t = 0..{result.cue_steps - 1}")
    width = int(13 * fig.get_figwidth())  # about 13 characters per inch at 9 pt
    fig.suptitle((f"{title}\n" if title else "") + textwrap.fill(heading, width=width))
