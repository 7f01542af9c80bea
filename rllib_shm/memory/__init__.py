"""The memory math: SHM, its ablations and baselines (torch only; never imports ray or gymnasium).

Dimension letters used in every shape: B batch, T time, D input width, H memory size,
L θ-table rows, O output width.
"""

from .base import MemoryCell, State
from .baselines import GRUCell, LSTMCell, MLPCell
from .config import MEMORY_KINDS, MemoryConfig, build_memory
from .ffm import FFMCell
from .kernels.fused import shm_scan
from .scan import hadamard_scan
from .shm import CALIBRATIONS, EVAL_THETA, THETA_MODES, SHMCell

__all__ = [
    "CALIBRATIONS",
    "EVAL_THETA",
    "MEMORY_KINDS",
    "THETA_MODES",
    "FFMCell",
    "GRUCell",
    "LSTMCell",
    "MLPCell",
    "MemoryCell",
    "MemoryConfig",
    "SHMCell",
    "State",
    "build_memory",
    "hadamard_scan",
    "shm_scan",
]
