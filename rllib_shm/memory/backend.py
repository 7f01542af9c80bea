"""Which implementation runs ``shm_scan``: the one place that chooses.

- ``torch``: the pure-torch fused loop of ``fused.py`` (any device, any float dtype).
- ``triton``: the Triton kernel of ``triton_scan.py`` (CUDA tensors; CPU tensors only under
  Triton's interpreter, ``TRITON_INTERPRET=1``, for tests). Inputs float32, bfloat16 or float16,
  state float32, H ≤ 256.
- ``auto`` (default): ``triton`` for CUDA tensors it supports when Triton can be imported,
  otherwise ``torch``.

The choice comes from ``shm_scan(..., backend=)``, else from the environment variable
``RLLIB_SHM_SCAN`` (e.g. ``RLLIB_SHM_SCAN=torch`` forces the fallback everywhere), else ``auto``.
"""

from __future__ import annotations

import functools
import os

import torch

from .validation import check_choice

BACKENDS = ("auto", "torch", "triton")
BACKEND_ENV = "RLLIB_SHM_SCAN"
TRITON_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
TRITON_MAX_SIZE = 256  # H: one program holds whole rows of M (next power of two ≥ H columns) in registers


@functools.cache
def triton_available() -> bool:
    """Triton imports here (the import is attempted once; it fails cleanly where it is absent)."""
    try:
        import triton  # noqa: F401
    except Exception:  # ImportError, or a broken install (e.g. a missing compiler backend)
        return False
    return True


def requested_backend(backend: str | None) -> str:
    """``backend`` if given, else ``$RLLIB_SHM_SCAN``, else ``auto``; checked against ``BACKENDS``."""
    if backend is not None:
        return check_choice("backend", backend, BACKENDS)
    return check_choice(f"${BACKEND_ENV}", os.environ.get(BACKEND_ENV, "auto"), BACKENDS)


def resolve_backend(backend: str | None, theta: torch.Tensor) -> str:
    """The implementation that runs a scan of these inputs (θ [B,T,H]): ``torch`` or ``triton``."""
    name = requested_backend(backend)
    if name != "auto":
        return name
    supported = theta.is_cuda and theta.dtype in TRITON_DTYPES and theta.shape[-1] <= TRITON_MAX_SIZE
    return "triton" if supported and triton_available() else "torch"
