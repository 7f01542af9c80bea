"""The Triton programs of SHM's fused scan (launched by ``triton_scan.py``; imports triton).

Dimension letters: B batch, T time, H memory size, K chunk length, S row tiles (S = ⌈H / BLOCK_I⌉).

One program owns one row tile of one batch element's memory: M[i, :] for the BLOCK_I rows i of
its tile and every column j (BLOCK_J = next power of two ≥ H; rows and columns past H are masked
and stay 0). Grid (S, B). The tile lives in registers for the whole sequence; per step the program
loads only [B,T,H] vectors (its rows of θ_t, v_t; all of c_t, k_t, q_t) and builds

    C_t[i, j] = 1 + tanh(θ_t[i] c_t[j])         U_t[i, j] = v_t[i] k_t[j]
    M_t = M_{t-1} ⊙ C_t + U_t                    r_t[i] = Σ_j M_t[i, j] q_t[j]

so the read is a sum over the columns the program holds: no communication in the forward.

C_t is computed from x = 2 θ_t[i] c_t[j] and e = exp(−|x|) as 2/(1+e) (x ≥ 0) or 2e/(1+e)
(x < 0), and its derivative 1 − tanh²(θc) = C(2 − C) as 4e/(1+e)²: no cancellation near C = 0,
C = 2 or in 2 − C, and no overflow for any x.

Backward (G_t = ∂L/∂M_t, reverse time; equations as in ``fused.py``):

    G_t += ∂r_t ⊗ q_t
    ∂q_t = M_tᵀ ∂r_t      ∂v_t = G_t k_t      ∂k_t = G_tᵀ v_t
    ∂Z_t = G_t ⊙ M_{t-1} ⊙ C_t (2 − C_t)      ∂θ_t = ∂Z_t c_t      ∂c_t = ∂Z_tᵀ θ_t
    G_{t-1} = G_t ⊙ C_t,   ∂M_0 = G_0

∂v_t and ∂θ_t sum over columns (local to the program); ∂q_t, ∂k_t and ∂c_t sum over rows, i.e.
over the S programs of a batch element. Those three are either added with relaxed fp32 atomics
into [B,T,H] (``ATOMIC``), or stored per tile into partial sums [S,B,T,H] that the launcher adds
in a fixed order (deterministic; S× the memory of those three gradients).

The forward stores M at every chunk start ([⌈T/K⌉,B,H,H], only when a gradient is needed). The
backward walks the chunks in reverse: it recomputes the chunk forward from its boundary, writing
M_{t-1} for each of its steps into a scratch buffer [B,K,H,H] (each program its own rows), then
runs the reverse recurrence over the chunk, reading M_{t-1} back and carrying M_t in registers.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _calibration(theta_rows, calib_cols):
    """C [BLOCK_I,BLOCK_J] = 1 + tanh(θ_i c_j) and its derivative C (2 − C), both in fp32."""
    x = 2.0 * theta_rows[:, None] * calib_cols[None, :]
    e = tl.exp(-tl.abs(x))
    p = 1.0 / (1.0 + e)
    return 2.0 * tl.where(x >= 0, p, e * p), 4.0 * e * p * p


@triton.jit
def _load(pointer, offsets, mask):
    """A masked load (0 outside) converted to fp32."""
    return tl.load(pointer + offsets, mask=mask, other=0.0).to(tl.float32)


@triton.jit(do_not_specialize=["steps"])
def shm_scan_forward(
    theta, calib, value, key, query,  # [B,T,H] each, any float dtype
    memory0,  # M_0 [B,H,H]
    reads,  # out: r [B,T,H], the inputs' dtype
    memory_out,  # out: M_T [B,H,H] fp32
    boundaries,  # out: M at every chunk start [⌈T/K⌉,B,H,H] fp32 (if STORE_BOUNDARIES)
    steps, size, chunk, batch,  # T, H, K, B
    BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr, STORE_BOUNDARIES: tl.constexpr,
):
    tile = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    rows = tile * BLOCK_I + tl.arange(0, BLOCK_I)
    cols = tl.arange(0, BLOCK_J)
    row_ok = rows < size
    col_ok = cols < size
    in_tile = row_ok[:, None] & col_ok[None, :]
    entries = rows[:, None] * size + cols[None, :]  # offsets of the tile inside one H×H matrix
    square = size * size
    memory = _load(memory0 + b * square, entries, in_tile)

    # Step t's vectors are loaded one step ahead (software prefetch: the loads do not depend on
    # the state, so their latency overlaps the previous step's arithmetic).
    sequence = b * steps * size  # start of batch element b in every [B,T,H] tensor
    theta_t = _load(theta + sequence, rows, row_ok)
    value_t = _load(value + sequence, rows, row_ok)
    calib_t = _load(calib + sequence, cols, col_ok)
    key_t = _load(key + sequence, cols, col_ok)
    query_t = _load(query + sequence, cols, col_ok)
    for t in range(0, steps):
        at = sequence + t * size
        ahead = sequence + tl.minimum(t + 1, steps - 1) * size  # the last step loads itself again
        theta_n = _load(theta + ahead, rows, row_ok)
        value_n = _load(value + ahead, rows, row_ok)
        calib_n = _load(calib + ahead, cols, col_ok)
        key_n = _load(key + ahead, cols, col_ok)
        query_n = _load(query + ahead, cols, col_ok)
        if STORE_BOUNDARIES:
            if t % chunk == 0:
                tl.store(boundaries + ((t // chunk) * batch + b) * square + entries, memory, mask=in_tile)
        calibration, _ = _calibration(theta_t, calib_t)
        memory = memory * calibration + value_t[:, None] * key_t[None, :]
        read = tl.sum(memory * query_t[None, :], axis=1)
        tl.store(reads + at + rows, read.to(reads.dtype.element_ty), mask=row_ok)
        theta_t, value_t, calib_t, key_t, query_t = theta_n, value_n, calib_n, key_n, query_n
    tl.store(memory_out + b * square + entries, memory, mask=in_tile)


@triton.jit
def _add_columns(pointer, offsets, values, mask, ATOMIC: tl.constexpr):
    """A row-tile's share of a column gradient: atomic add, or a plain store into its partial sum."""
    if ATOMIC:
        tl.atomic_add(pointer + offsets, values, mask=mask, sem="relaxed")
    else:
        tl.store(pointer + offsets, values, mask=mask)


@triton.jit(do_not_specialize=["steps"])
def shm_scan_backward(
    theta, calib, value, key, query,  # [B,T,H] each
    boundaries,  # M at every chunk start [⌈T/K⌉,B,H,H] fp32
    grad_reads,  # ∂L/∂r [B,T,H]
    grad_memory_out,  # ∂L/∂M_T [B,H,H] (read if HAS_GRAD_MEMORY)
    scratch,  # work space [B,K,H,H] fp32: M_{t-1} for the steps of the current chunk
    grad_theta, grad_value,  # out: [B,T,H] fp32 (sums over columns: written by the row owner)
    grad_calib, grad_key, grad_query,  # out: [B,T,H] fp32 (ATOMIC) or partial sums [S,B,T,H]
    grad_memory0,  # out: ∂L/∂M_0 [B,H,H] fp32
    steps, size, chunk, batch,  # T, H, K, B
    BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr, HAS_GRAD_MEMORY: tl.constexpr, ATOMIC: tl.constexpr,
):
    tile = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    rows = tile * BLOCK_I + tl.arange(0, BLOCK_I)
    cols = tl.arange(0, BLOCK_J)
    row_ok = rows < size
    col_ok = cols < size
    in_tile = row_ok[:, None] & col_ok[None, :]
    entries = rows[:, None] * size + cols[None, :]
    square = size * size
    sequence = b * steps * size  # start of batch element b in every [B,T,H] tensor
    if ATOMIC:
        partial = 0
    else:
        partial = tile.to(tl.int64) * batch * steps * size  # this tile's slice of the partial sums
    if HAS_GRAD_MEMORY:
        grad = _load(grad_memory_out + b * square, entries, in_tile)
    else:
        grad = tl.zeros((BLOCK_I, BLOCK_J), dtype=tl.float32)
    work = scratch + b * chunk * square + entries

    chunks = tl.cdiv(steps, chunk)
    for back in range(0, chunks):
        index = chunks - 1 - back
        start = index * chunk
        length = tl.minimum(chunk, steps - start)
        # 1. Recompute the chunk forward from its boundary; keep M_{t-1} of each step in scratch.
        memory = _load(boundaries + (index * batch + b) * square, entries, in_tile)
        for s in range(0, length):
            at = sequence + (start + s) * size
            tl.store(work + s * square, memory, mask=in_tile)
            calibration, _ = _calibration(_load(theta + at, rows, row_ok), _load(calib + at, cols, col_ok))
            value_t = _load(value + at, rows, row_ok)
            key_t = _load(key + at, cols, col_ok)
            memory = memory * calibration + value_t[:, None] * key_t[None, :]
        tl.debug_barrier()  # scratch written by every thread before any thread reads it back
        # 2. Reverse recurrence over the chunk; `memory` holds M_t, scratch gives M_{t-1}.
        for s in range(0, length):
            step = length - 1 - s
            at = sequence + (start + step) * size
            theta_t = _load(theta + at, rows, row_ok)
            value_t = _load(value + at, rows, row_ok)
            calib_t = _load(calib + at, cols, col_ok)
            key_t = _load(key + at, cols, col_ok)
            query_t = _load(query + at, cols, col_ok)
            grad_read = _load(grad_reads + at, rows, row_ok)
            previous = tl.load(work + step * square, mask=in_tile, other=0.0)
            calibration, slope = _calibration(theta_t, calib_t)
            grad += grad_read[:, None] * query_t[None, :]  # G_t += ∂r_t ⊗ q_t
            grad_z = grad * previous * slope  # ∂Z_t = G_t ⊙ M_{t-1} ⊙ C_t (2 − C_t)
            tl.store(grad_value + at + rows, tl.sum(grad * key_t[None, :], axis=1), mask=row_ok)  # G_t k_t
            tl.store(grad_theta + at + rows, tl.sum(grad_z * calib_t[None, :], axis=1), mask=row_ok)  # ∂Z_t c_t
            _add_columns(grad_query, partial + at + cols, tl.sum(memory * grad_read[:, None], axis=0), col_ok,
                         ATOMIC)  # M_tᵀ ∂r_t
            _add_columns(grad_key, partial + at + cols, tl.sum(grad * value_t[:, None], axis=0), col_ok,
                         ATOMIC)  # G_tᵀ v_t
            _add_columns(grad_calib, partial + at + cols, tl.sum(grad_z * theta_t[:, None], axis=0), col_ok,
                         ATOMIC)  # ∂Z_tᵀ θ_t
            grad = grad * calibration  # G_{t-1} = G_t ⊙ C_t
            memory = previous
        tl.debug_barrier()  # scratch read by every thread before the next chunk overwrites it
    tl.store(grad_memory0 + b * square + entries, grad, mask=in_tile)
