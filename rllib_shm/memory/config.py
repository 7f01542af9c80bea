"""``MemoryConfig``: the one source of configuration for a memory cell, and ``build_memory``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .base import MemoryCell
from .baselines import GRUCell, LSTMCell, MLPCell
from .ffm import FFMCell
from .shm import CALIBRATIONS, EVAL_THETA, KEY_QUERY, THETA_MODES, SHMCell
from .validation import check_choice, check_clamp, check_positive_int, check_recency

MEMORY_KINDS = ("shm", "gru", "lstm", "mlp", "ffm")


@dataclass(frozen=True)
class MemoryConfig:
    """Which memory and its sizes. SHM-only fields are ignored by the others (FFM's by all but FFM)."""

    kind: str = "shm"  # shm | gru | lstm | mlp | ffm
    mem_size: int = 64  # H: SHM's memory is H×H; hidden size of GRU / LSTM / MLP; FFM's trace size M
    num_thetas: int = 128  # L: rows of SHM's θ table
    theta_mode: str = "random"  # random (paper) | fixed (what the reference code ran)
    calibration: str = "shm"  # shm | none | fixed_matrix | random_matrix | neural_theta
    eval_theta: str = "sample"  # θ in eval(): sample (as in training) | expected (deterministic)
    memory_clamp: float | None = None  # clamp M to [-c, c] after every step (off by default)
    chunk_size: int | None = None  # K of the fused SHM scan; None = ≈ √(T/2)
    seed: int = 0  # seed of SHM's own θ generator
    context_size: int = 8  # C of FFM (its trace is M×C complex); ignored by the others
    key_query: str = "relu"  # relu (paper): k, q ≥ 0, L1-normalised | signed: L1-normalised by Σ|·| (SHM)
    recency: int = 0  # 0 (paper) | w ≥ 2: the recency path, a causal depthwise convolution over x̂ (SHM)

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, MEMORY_KINDS)
        check_positive_int("mem_size", self.mem_size)
        check_positive_int("num_thetas", self.num_thetas)
        check_choice("theta_mode", self.theta_mode, THETA_MODES)
        check_choice("calibration", self.calibration, CALIBRATIONS)
        check_choice("eval_theta", self.eval_theta, EVAL_THETA)
        check_clamp(self.memory_clamp)
        if self.chunk_size is not None:
            check_positive_int("chunk_size", self.chunk_size)
        check_positive_int("context_size", self.context_size)
        check_choice("key_query", self.key_query, KEY_QUERY)
        check_recency(self.recency)

    @classmethod
    def from_dict(cls, values: dict) -> MemoryConfig:
        """Build from a plain dict; an unknown key raises naming it and the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown memory config key(s) {unknown}; valid keys: {sorted(names)}")
        return cls(**values)


def build_memory(config: MemoryConfig, input_size: int, output_size: int) -> MemoryCell:
    """The cell ``config`` describes, mapping [B,T,input_size] to [B,T,output_size]."""
    if config.kind == "shm":
        return SHMCell(
            input_size,
            output_size,
            config.mem_size,
            num_thetas=config.num_thetas,
            theta_mode=config.theta_mode,
            calibration=config.calibration,
            eval_theta=config.eval_theta,
            memory_clamp=config.memory_clamp,
            chunk_size=config.chunk_size,
            seed=config.seed,
            key_query=config.key_query,
            recency=config.recency,
        )
    if config.kind == "ffm":
        return FFMCell(input_size, output_size, config.mem_size, context_size=config.context_size)
    cls = {"gru": GRUCell, "lstm": LSTMCell, "mlp": MLPCell}[config.kind]
    return cls(input_size, output_size, config.mem_size)
