"""The compiled SHM scan as torch calls: ctypes wrappers and the autograd Function.

Dimension letters: B batch, T time, H memory size, K chunk length, L table rows.

Two calibration sources (equations in ``shm_scan.cpp`` and ``rllib_shm.memory.kernels.fused``):

- vector: C_t = 2·sigmoid(2 θ_t ⊗ c_t) from ``theta``, ``calib`` [B,T,H] (SHM, none, neural θ);
- table:  C_t = ``table``[l_t] from ``table`` [L,H,H] and ``indices`` [B,T] (fixed / random matrix).

Both take an optional clamp c > 0 (M_t ← clamp(M_t, −c, c)). Inputs must be contiguous CPU float32
or float64 tensors of one dtype (the callers in ``fused`` make them so).
"""

from __future__ import annotations

import ctypes
import threading
import warnings

import torch

from .build import Build, build

_POINTER, _INT, _DOUBLE = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
_FORWARD_ARGS = [_POINTER] * 11 + [_INT] * 5 + [_DOUBLE, _INT]
_BACKWARD_ARGS = [_POINTER] * 17 + [_INT] * 5 + [_DOUBLE, _INT]
_ACT_ARGS = [_POINTER, _INT, _POINTER, _POINTER, _INT, _POINTER, _POINTER, _POINTER, _INT, _INT, _INT, _DOUBLE]
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_PARALLEL_WORK = 1 << 22  # B·T·H² below which threads cost more than they save

_lock = threading.Lock()
_build: Build | None = None
_functions: dict[tuple[str, torch.dtype], object] = {}


def kernel_build() -> Build:
    """The (memoised) outcome of loading or compiling the kernel in this process."""
    global _build
    if _build is None:
        with _lock:
            if _build is None:
                result = build()
                if result.library is not None:
                    for dtype, suffix in _SUFFIX.items():
                        for name, args in (("forward", _FORWARD_ARGS), ("backward", _BACKWARD_ARGS),
                                           ("act", _ACT_ARGS)):
                            function = getattr(result.library, f"shm_{name}_{suffix}")
                            function.argtypes, function.restype = args, None
                            _functions[name, dtype] = function
                _build = result
    return _build


_warned = False


def available(warn: bool = True) -> bool:
    """Whether the compiled kernel loaded; the first failure warns once (``warn``)."""
    global _warned
    result = kernel_build()
    if result.library is None and warn and not _warned:
        _warned = True
        warnings.warn(f"rllib_shm: compiled CPU scan unavailable, using the pure-torch scan ({result.error})",
                      RuntimeWarning, stacklevel=3)
    return result.library is not None


def _function(name: str, dtype: torch.dtype):
    if _build is None:
        kernel_build()
    try:
        return _functions[name, dtype]
    except KeyError:
        if dtype not in _SUFFIX:
            raise ValueError(f"the compiled scan supports float32 and float64, got {dtype}") from None
        raise RuntimeError(f"the compiled CPU scan is unavailable: {_build.error}") from None


def _ptr(tensor: torch.Tensor | None) -> int | None:
    return None if tensor is None else tensor.data_ptr()


def _threads(batch: int, steps: int, size: int) -> int:
    return torch.get_num_threads() if batch * steps * size * size >= _PARALLEL_WORK else 1


def _sizes(value, table, chunk):
    batch, steps, size = value.shape
    return batch, steps, size, chunk, 0 if table is None else table.shape[0]


def forward(theta, calib, table, indices, value, key, query, memory0, chunk: int, clamp: float | None,
            store: bool):
    """reads [B,T,H], M_T [B,H,H] and (``store``) the chunk boundaries [B,⌈T/K⌉,H,H]."""
    batch, steps, size, chunk, rows = _sizes(value, table, chunk)
    reads = value.new_empty(batch, steps, size)
    memory = memory0.new_empty(batch, size, size)
    boundaries = value.new_empty(batch, -(-steps // chunk), size, size) if store else None
    _function("forward", value.dtype)(
        _ptr(theta), _ptr(calib), _ptr(table), _ptr(indices), _ptr(value), _ptr(key), _ptr(query), _ptr(memory0),
        _ptr(reads), _ptr(memory), _ptr(boundaries), batch, steps, size, chunk, rows, clamp or 0.0,
        _threads(batch, steps, size))
    return reads, memory, boundaries


def backward(theta, calib, table, indices, value, key, query, boundaries, grad_reads, grad_final, chunk: int,
             clamp: float | None):
    """∂θ, ∂c (vector) or ∂table (table), ∂v, ∂k, ∂q, ∂M_0 (None where the source is unused)."""
    batch, steps, size, chunk, rows = _sizes(value, table, chunk)
    vector = table is None
    grad_theta = torch.empty_like(theta) if vector else None
    grad_calib = torch.empty_like(calib) if vector else None
    grad_table = None if vector else torch.zeros_like(table)
    grad_value, grad_key, grad_query = (torch.empty_like(t) for t in (value, key, query))
    grad_memory0 = value.new_empty(batch, size, size)
    _function("backward", value.dtype)(
        _ptr(theta), _ptr(calib), _ptr(table), _ptr(indices), _ptr(value), _ptr(key), _ptr(query), _ptr(boundaries),
        _ptr(grad_reads), _ptr(grad_final), _ptr(grad_theta), _ptr(grad_calib), _ptr(grad_table), _ptr(grad_value),
        _ptr(grad_key), _ptr(grad_query), _ptr(grad_memory0), batch, steps, size, chunk, rows, clamp or 0.0,
        _threads(batch, steps, size))
    return grad_theta, grad_calib, grad_table, grad_value, grad_key, grad_query, grad_memory0


class CompiledScan(torch.autograd.Function):
    """Autograd wrapper: forward stores only chunk boundaries, backward recomputes inside chunks."""

    @staticmethod
    def forward(ctx, theta, calib, table, indices, value, key, query, memory0, chunk, clamp):  # noqa: D102
        reads, memory, boundaries = forward(theta, calib, table, indices, value, key, query, memory0, chunk, clamp,
                                            store=True)
        ctx.chunk, ctx.clamp = chunk, clamp
        ctx.save_for_backward(theta, calib, table, indices, value, key, query, boundaries)
        return reads, memory

    @staticmethod
    def backward(ctx, grad_reads, grad_final):  # noqa: D102
        theta, calib, table, indices, value, key, query, boundaries = ctx.saved_tensors
        grad_reads = torch.zeros_like(query) if grad_reads is None else grad_reads.contiguous()
        grad_final = None if grad_final is None else grad_final.contiguous()
        g_theta, g_calib, g_table, g_value, g_key, g_query, g_memory0 = backward(
            theta, calib, table, indices, value, key, query, boundaries, grad_reads, grad_final, ctx.chunk, ctx.clamp)
        return g_theta, g_calib, g_table, None, g_value, g_key, g_query, g_memory0, None, None


def compiled_scan(theta, calib, table, indices, value, key, query, memory0, chunk: int, clamp: float | None):
    """reads [B,T,H] and M_T [B,H,H]; autograd only when some input needs a gradient."""
    inputs = [t.contiguous() if t is not None else None
              for t in (theta, calib, table, indices, value, key, query, memory0)]
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs):
        return CompiledScan.apply(*inputs, chunk, clamp)
    reads, memory, _ = forward(*inputs, chunk, clamp, store=False)  # acting: no autograd, no boundaries
    return reads, memory


def act(stacked: torch.Tensor, thetas: torch.Tensor | None, indices: torch.Tensor | None, theta_offset: int,
        memory0: torch.Tensor, clamp: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The SHM cell after its stacked input projection, without autograd (acting).

    ``stacked`` [B,T,W] holds, per step, [k̃ | q̃ | ṽ | η̃ | c | W_s x̂ + b_s] (H, H, H, 1, H, H
    columns) and, for neural θ, θ_t in the H columns from ``theta_offset``. θ_t is
    ``thetas[indices]`` ([L,H], [B,T]) when ``indices`` is given, else the row's own θ when
    ``theta_offset`` > 0, else 0 (C_t = 1). Returns M_t q_t + W_s x̂_t + b_s [B,T,H] and M_T [B,H,H]
    (equations in ``shm_scan.cpp``, ``act``). Inputs: contiguous, one dtype, on the CPU.
    """
    batch, steps, width = stacked.shape
    size = memory0.shape[-1]
    y = stacked.new_empty(batch, steps, size)
    memory = torch.empty_like(memory0)
    _function("act", stacked.dtype)(
        stacked.data_ptr(), width, _ptr(thetas), _ptr(indices), theta_offset, memory0.data_ptr(), memory.data_ptr(),
        y.data_ptr(), batch, steps, size, clamp or 0.0)
    return y, memory
