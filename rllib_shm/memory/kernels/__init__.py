"""The kernels that run SHM's recurrence fast (torch only; never imports ray or gymnasium).

The math they compute is in the parent package (``rllib_shm.memory.scan``'s ``hadamard_scan`` is the
reference every kernel is tested against; ``rllib_shm.memory.shm`` builds the vectors they take).
Dimension letters: B batch, T time, H memory size, K chunk length.

- ``fused.py``: ``shm_scan`` and ``table_scan``, the fused recurrence (C_t and U_t built per step
  from [B,T,H] vectors, hand-written backward, states kept every K steps) and its pure-torch loop;
- ``backend.py``: the one place that chooses which implementation runs (``torch``, ``compiled``,
  ``triton``, ``auto``);
- ``cpu_kernel/``: the compiled CPU scan (C++ source, compile-on-first-use cache, torch wrappers);
- ``triton_scan.py`` + ``triton_kernels.py``: the Triton scan for CUDA tensors (imported only when
  it runs).
"""

from .backend import BACKENDS, select_backend
from .fused import default_chunk_size, shm_scan, table_scan

__all__ = ["BACKENDS", "default_chunk_size", "select_backend", "shm_scan", "table_scan"]
