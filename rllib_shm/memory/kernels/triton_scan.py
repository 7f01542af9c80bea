"""SHM's fused scan as Triton kernels, forward and backward, behind ``shm_scan`` (imports triton).

Dimension letters: B batch, T time, H memory size, K chunk length, S row tiles.

Computes exactly what ``fused.shm_scan``'s torch path computes (equations in ``fused.py``; the
programs and their layout in ``triton_kernels.py``), with the whole recurrence in two kernel
launches (forward; backward) instead of about 14 small kernels per step:

- forward: grid (S, B); a program keeps rows of M_t in registers for all T steps and writes only
  the reads r [B,T,H], M_T, and (when a gradient is needed) M at every chunk start
  [⌈T/K⌉,B,H,H] fp32.
- backward: the same grid; chunks in reverse, each recomputed from its boundary into a scratch
  buffer [B,K,H,H] fp32, then the reverse recurrence. Nothing of size [B,T,H,H] is allocated:
  activation memory is (⌈T/K⌉ + K)·B·H² fp32, about 2√(2T)·B·H² with the default K ≈ √(T/2).
- the gradients of q, k and c sum over rows, i.e. over the S programs of one batch element:
  fp32 atomics by default (3·B·T·H floats), or per-tile partial sums added in a fixed order when
  ``torch.are_deterministic_algorithms_enabled()`` (3·S·B·T·H floats, reproducible to the bit).

Inputs float32, bfloat16 or float16 (loaded and computed in fp32); the state is fp32; the reads
come back in the inputs' dtype, M_T and ∂M_0 in ``memory0``'s. On CPU tensors the kernels run
only under Triton's interpreter (``TRITON_INTERPRET=1`` set before this module is first
imported), which is how the test suite checks them on machines without a GPU.

Tiles: ``block_rows`` rows (a power of two) by next_pow2(H) columns per program, default
min(next_pow2(H), max(4, 2048 / next_pow2(H))): 32 rows at H ≤ 64, 16 at H = 128, 8 at H = 256;
``num_warps`` 4 for tiles of ≤ 1024 entries, else 8. Both can be set per call or by the
environment variables ``RLLIB_SHM_TRITON_BLOCK_ROWS`` / ``RLLIB_SHM_TRITON_WARPS`` (tuning knobs
for the benchmark). Compiled ahead of time for sm_90 with Triton 3.7.1 (no GPU needed; see
``tests/test_memory_triton_compile.py``), the default tiles need 105–124 registers per thread in
the forward and about 150–200 in the backward, with no spills; 2048-entry tiles on 4 warps spill.
Fewer rows per tile mean more programs (B·S; useful when B is small) but more atomic traffic.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import triton

from ..validation import check_positive_int
from . import triton_kernels as kernels
from .backend import TRITON_DTYPES, TRITON_MAX_SIZE

BLOCK_ROWS_ENV = "RLLIB_SHM_TRITON_BLOCK_ROWS"
WARPS_ENV = "RLLIB_SHM_TRITON_WARPS"


def interpreted() -> bool:
    """Whether the kernels were built for Triton's interpreter (they then accept CPU tensors)."""
    return not isinstance(kernels.shm_scan_forward, triton.runtime.JITFunction)


@dataclass(frozen=True)
class TilePlan:
    """One program's tile: ``block_rows`` × ``block_cols`` entries of M; ``tiles`` = S programs per
    batch element; ``num_warps`` per program."""

    block_rows: int
    block_cols: int
    tiles: int
    num_warps: int


def _power_of_two(name: str, value: int) -> int:
    check_positive_int(name, value)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two, got {value}")
    return value


def _from_env(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"${name} must be an integer, got {text!r}") from None


def tile_plan(size: int, block_rows: int | None = None, num_warps: int | None = None) -> TilePlan:
    """Tiles for memory size H = ``size`` (arguments, else environment, else the defaults above)."""
    check_positive_int("size", size)
    if size > TRITON_MAX_SIZE:
        raise ValueError(f"the Triton scan supports H ≤ {TRITON_MAX_SIZE}, got H = {size}")
    block_cols = max(16, triton.next_power_of_2(size))
    rows_name, warps_name = "block_rows", "num_warps"
    if block_rows is None and (block_rows := _from_env(BLOCK_ROWS_ENV)) is not None:
        rows_name = f"${BLOCK_ROWS_ENV}"
    if num_warps is None and (num_warps := _from_env(WARPS_ENV)) is not None:
        warps_name = f"${WARPS_ENV}"
    if block_rows is None:
        block_rows = min(block_cols, max(4, 2048 // block_cols))
    _power_of_two(rows_name, block_rows)
    if block_rows > block_cols:
        raise ValueError(f"{rows_name} must be at most {block_cols} (the column block) for H = {size}, "
                         f"got {block_rows}")
    if num_warps is None:  # ≤ 8 entries of each tile per thread: no register spills (see the module docstring)
        num_warps = 4 if block_rows * block_cols <= 1024 else 8
    num_warps = _power_of_two(warps_name, num_warps)
    return TilePlan(block_rows, block_cols, -(-size // block_rows), num_warps)


def _on_device(tensor: torch.Tensor):
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()


class _TritonSHMScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, calib, value, key, query, memory0, chunk, plan):  # noqa: D102
        batch, steps, size = theta.shape
        vectors = [x.contiguous() for x in (theta, calib, value, key, query)]
        reads = torch.empty_like(vectors[0])
        memory = torch.empty(batch, size, size, device=theta.device, dtype=torch.float32)
        store = any(ctx.needs_input_grad[:6])
        chunks = -(-steps // chunk)
        boundaries = memory.new_empty(chunks, batch, size, size) if store else memory  # else unused
        with _on_device(theta):
            kernels.shm_scan_forward[(plan.tiles, batch)](
                *vectors, memory0.contiguous(), reads, memory, boundaries, steps, size, chunk, batch,
                BLOCK_I=plan.block_rows, BLOCK_J=plan.block_cols, STORE_BOUNDARIES=store,
                num_warps=plan.num_warps)
        ctx.save_for_backward(*vectors, boundaries)
        ctx.chunk, ctx.plan, ctx.memory_dtype = chunk, plan, memory0.dtype
        return reads, memory.to(memory0.dtype)

    @staticmethod
    def backward(ctx, grad_reads, grad_memory):  # noqa: D102
        *vectors, boundaries = ctx.saved_tensors
        batch, steps, size = vectors[0].shape
        plan, chunk = ctx.plan, ctx.chunk
        f32 = {"device": boundaries.device, "dtype": torch.float32}
        grad_reads = torch.zeros_like(vectors[0]) if grad_reads is None else grad_reads.contiguous()
        has_grad_memory = grad_memory is not None
        grad_memory = grad_memory.contiguous() if has_grad_memory else boundaries  # else unused
        atomic = plan.tiles > 1 and not torch.are_deterministic_algorithms_enabled()
        shares = plan.tiles if plan.tiles > 1 and not atomic else 1
        grad_theta, grad_value = (torch.empty(batch, steps, size, **f32) for _ in range(2))
        new = torch.zeros if atomic else torch.empty  # partial sums are written whole by their tile
        grad_calib, grad_key, grad_query = (new(shares, batch, steps, size, **f32) for _ in range(3))
        grad_memory0 = torch.empty(batch, size, size, **f32)
        scratch = torch.empty(batch, chunk, size, size, **f32)
        with _on_device(boundaries):
            kernels.shm_scan_backward[(plan.tiles, batch)](
                *vectors, boundaries, grad_reads, grad_memory, scratch, grad_theta, grad_value,
                grad_calib, grad_key, grad_query, grad_memory0, steps, size, chunk, batch,
                BLOCK_I=plan.block_rows, BLOCK_J=plan.block_cols, HAS_GRAD_MEMORY=has_grad_memory,
                ATOMIC=atomic, num_warps=plan.num_warps)
        grad_calib, grad_key, grad_query = (g.sum(0) for g in (grad_calib, grad_key, grad_query))
        dtype = vectors[0].dtype
        grads = (g.to(dtype) for g in (grad_theta, grad_calib, grad_value, grad_key, grad_query))
        return (*grads, grad_memory0.to(ctx.memory_dtype), None, None)


def triton_shm_scan(
    theta: torch.Tensor,
    calib: torch.Tensor,
    value: torch.Tensor,
    key: torch.Tensor,
    query: torch.Tensor,
    memory0: torch.Tensor,
    chunk_size: int,
    *,
    block_rows: int | None = None,
    num_warps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``shm_scan``'s Triton backend: reads r [B,T,H] and M_T [B,H,H] (shapes checked by ``shm_scan``).

    θ, c, v (η folded in), k, q: [B,T,H], one dtype among float32 / bfloat16 / float16;
    ``memory0`` M_0 [B,H,H], any float dtype (float32 recommended: the state is fp32 inside);
    ``chunk_size`` K ≥ 1, steps between stored states.
    """
    if theta.dtype not in TRITON_DTYPES:
        names = ", ".join(str(d) for d in TRITON_DTYPES)
        raise ValueError(f"the Triton scan takes inputs of dtype {names}; got {theta.dtype}")
    if not memory0.is_floating_point():
        raise ValueError(f"memory0 must be a floating-point tensor, got dtype {memory0.dtype}")
    if not theta.is_cuda and not interpreted():
        raise ValueError(
            f"the Triton scan runs on CUDA tensors (got device {theta.device}); CPU tensors need Triton's "
            "interpreter: TRITON_INTERPRET=1 set before rllib_shm.memory.kernels.triton_kernels is imported")
    plan = tile_plan(theta.shape[-1], block_rows, num_warps)
    batch, steps, size = theta.shape
    if steps == 0:
        return query.new_zeros(batch, 0, size), memory0
    chunk = min(check_positive_int("chunk_size", chunk_size), steps)
    return _TritonSHMScan.apply(theta, calib, value, key, query, memory0, chunk, plan)
