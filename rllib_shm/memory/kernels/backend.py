"""Which implementation runs the fused scans (``shm_scan``, ``table_scan``): the one place that chooses.

- ``torch``: the pure-torch loop of ``fused.py`` (any device, any float dtype; about 14 small
  kernels per step).
- ``compiled``: the C++ kernel of ``cpu_kernel`` (CPU float32/float64 tensors), compiled with the
  system's C++ compiler at first use and cached.
- ``triton``: the Triton kernel of ``triton_scan.py`` (CUDA tensors; CPU tensors only under
  Triton's interpreter, ``TRITON_INTERPRET=1``, for tests). Inputs float32, bfloat16 or float16,
  state float32, H ≤ 256, no clamp of M, ``shm_scan`` only.
- ``auto`` (default): ``triton`` for CUDA tensors it supports when Triton imports, ``compiled`` for
  CPU float32/float64 tensors when the kernel builds and loads (else a warning, once, says why),
  otherwise ``torch``. While ``torch.compile`` / ``torch.export`` trace, always ``torch`` (a
  native call cannot be traced; the ONNX export traces the torch loop).

The choice comes from the ``backend=`` argument, else from the environment variable
``RLLIB_SHM_SCAN`` (e.g. ``RLLIB_SHM_SCAN=torch`` forces the fallback everywhere), else ``auto``.
An explicit ``compiled`` or ``triton`` that cannot run raises instead of falling back.
"""

from __future__ import annotations

import functools
import os

import torch

from ..validation import check_choice
from . import cpu_kernel

BACKENDS = ("auto", "torch", "compiled", "triton")
BACKEND_ENV = "RLLIB_SHM_SCAN"
COMPILED_DTYPES = (torch.float32, torch.float64)
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
    return check_choice(f"${BACKEND_ENV}", os.environ.get(BACKEND_ENV) or "auto", BACKENDS)


def select_backend(device: torch.device, dtype: torch.dtype, backend: str | None = None, *,
                   size: int | None = None, clamp: bool = False, table: bool = False) -> str:
    """The implementation for a scan of ``dtype`` tensors on ``device`` with memory size ``size``
    (H), a clamp of M (``clamp``) or calibrations from a table (``table_scan``): a name of BACKENDS."""
    name = requested_backend(backend)
    if name == "torch" or torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return "torch"
    triton_ok = (not clamp and not table and dtype in TRITON_DTYPES and (size is None or size <= TRITON_MAX_SIZE))
    compiled_ok = device.type == "cpu" and dtype in COMPILED_DTYPES
    if name == "triton":  # (triton_scan checks dtypes and sizes itself, naming the offending input)
        if clamp or table:
            raise ValueError("the triton backend runs shm_scan without memory_clamp only; use auto, torch or compiled")
        return "triton"
    if name == "compiled":
        if not compiled_ok:
            raise ValueError(f"the compiled scan runs on CPU float32/float64 tensors, got {device.type} {dtype}")
        if not cpu_kernel.available(warn=False):
            raise RuntimeError(f"the compiled CPU scan is unavailable: {cpu_kernel.kernel_build().error}")
        return "compiled"
    if device.type == "cuda" and triton_ok and triton_available():
        return "triton"
    return "compiled" if compiled_ok and cpu_kernel.available() else "torch"


def resolve_backend(backend: str | None, theta: torch.Tensor) -> str:
    """``select_backend`` for an ``shm_scan`` of θ [B,T,H]."""
    return select_backend(theta.device, theta.dtype, backend, size=theta.shape[-1])
