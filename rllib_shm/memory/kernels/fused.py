"""SHM's recurrence, fused: C_t and U_t built on the fly from vectors, a hand-written backward.

Dimension letters: B batch, T time, H memory size, K chunk length.

Forward, for t = 1..T (M_0 given):

    C_t = 1 + tanh(θ_t ⊗ c_t)           C_t[i, j] = 1 + tanh(θ_t[i] · c_t[j])   in (0, 2)
    U_t = v_t ⊗ k_t                     U_t[i, j] = v_t[i] · k_t[j]   (η_t already folded into v_t)
    M_t = M_{t-1} ⊙ C_t + U_t
    r_t = M_t q_t

Backward (reverse-time recurrence; G_t = ∂L/∂M_t including every later use of M_t):

    G_T   = ∂L/∂M_T (output) ,   G_t += ∂L/∂r_t ⊗ q_t
    ∂q_t  = M_tᵀ ∂L/∂r_t
    ∂v_t  = G_t k_t ,            ∂k_t = G_tᵀ v_t
    ∂Z_t  = G_t ⊙ M_{t-1} ⊙ (1 − tanh²(Z_t)),   Z_t = θ_t ⊗ c_t
    ∂θ_t  = ∂Z_t c_t ,           ∂c_t = ∂Z_tᵀ θ_t
    G_{t-1} = G_t ⊙ C_t ,        ∂M_0 = G_0

C_t is computed as 2·sigmoid(2 θ_t ⊗ c_t) (= 1 + tanh(θ_t ⊗ c_t)) and 1 − tanh²(Z_t) as
C_t (2 − C_t). Nothing of size B×T×H×H is ever materialised. The forward keeps only the states at chunk
boundaries (every K steps, [T/K,B,H,H]); the backward recomputes one chunk's states and tanh
values ([K,B,H,H] each) from its boundary, then runs the reverse recurrence over it. With
K ≈ √T the activation memory is O(√T·B·H²) instead of O(T·B·H²).

Three backends compute this (``backend.py`` chooses): ``torch``, the Python loop below (about 14
small torch kernels per step, any device); ``compiled``, the same algorithm in C++
(``cpu_kernel``: one native call per direction, C_t built in registers, M_t kept in cache; CPU
tensors), the default on CPU; ``triton``, a Triton kernel (``triton_scan.py``), the default for
CUDA tensors. The compiled path also runs the calibration-table scan (``table_scan``: fixed and
random matrices) and the optional clamp of M; the torch backend runs those through the general
``hadamard_scan`` instead.
"""

from __future__ import annotations

import math

import torch

from ..scan import hadamard_scan
from ..validation import check_clamp, check_positive_int, check_same_dtype_device, check_tensor
from . import cpu_kernel
from .backend import BACKENDS, select_backend

__all__ = ["BACKENDS", "default_chunk_size", "select_backend", "shm_scan", "table_scan"]


def default_chunk_size(steps: int) -> int:
    """K ≈ √(T/2): balances T/K stored boundaries against 2K recomputed matrices."""
    return max(1, int(math.ceil(math.sqrt(max(steps, 1) / 2))))


def _calibration(theta_t: torch.Tensor, calib_t: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """C_t = 1 + tanh(θ_t ⊗ c_t) computed as 2·sigmoid(2 θ_t ⊗ c_t), [B,H,H].

    The two are equal in exact arithmetic; the sigmoid form is several times faster on CPU and
    more accurate where C_t is near 0 (1 + tanh(z) cancels there).
    """
    z = torch.mul((2 * theta_t).unsqueeze(-1), calib_t.unsqueeze(-2), out=out)
    return torch.sigmoid_(z).mul_(2)


def _step(memory, calibration, value_t, key_t, out: torch.Tensor | None = None) -> torch.Tensor:
    """M_t = M_{t-1} ⊙ C_t + v_t ⊗ k_t (a new tensor, or written into ``out``)."""
    return torch.mul(memory, calibration, out=out).addcmul_(value_t.unsqueeze(-1), key_t.unsqueeze(-2))


def _read(memory: torch.Tensor, query_t: torch.Tensor) -> torch.Tensor:
    """r_t = M_t q_t, [B,H] (a broadcast multiply-sum: faster than a batched gemv here)."""
    return (memory * query_t.unsqueeze(-2)).sum(-1)


class _SHMScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, calib, value, key, query, memory0, chunk_size):  # noqa: D102
        steps = theta.shape[1]
        reads = []
        boundaries = []
        memory = memory0
        for start in range(0, steps, chunk_size):
            boundaries.append(memory)
            for t in range(start, min(start + chunk_size, steps)):
                memory = _step(memory, _calibration(theta[:, t], calib[:, t]), value[:, t], key[:, t])
                reads.append(_read(memory, query[:, t]))
        ctx.chunk_size = chunk_size
        ctx.save_for_backward(theta, calib, value, key, query, *boundaries)
        return torch.stack(reads, 1), memory

    @staticmethod
    def backward(ctx, grad_reads, grad_final):  # noqa: D102
        theta, calib, value, key, query, *boundaries = ctx.saved_tensors
        chunk_size = ctx.chunk_size
        steps = theta.shape[1]
        grad_theta, grad_calib, grad_value, grad_key, grad_query = (
            torch.zeros_like(t) for t in (theta, calib, value, key, query)
        )
        g = torch.zeros_like(boundaries[0]) if grad_final is None else grad_final.clone()
        if grad_reads is None:
            grad_reads = torch.zeros_like(query)
        # One buffer for a chunk's recomputed states and calibrations, reused for every chunk
        # (allocation churn of many fresh [B,H,H] tensors costs more than the arithmetic on CPU).
        states = boundaries[0].new_empty((chunk_size + 1, *boundaries[0].shape))
        calibrations = boundaries[0].new_empty((chunk_size, *boundaries[0].shape))
        for index in range(len(boundaries) - 1, -1, -1):
            start = index * chunk_size
            stop = min(start + chunk_size, steps)
            # Recompute the chunk: states[i] = M_{start+i}, calibrations[i] = C_{start+i+1}.
            states[0] = boundaries[index]
            for t in range(start, stop):
                i = t - start
                _calibration(theta[:, t], calib[:, t], out=calibrations[i])
                _step(states[i], calibrations[i], value[:, t], key[:, t], out=states[i + 1])
            for t in range(stop - 1, start - 1, -1):
                i = t - start
                memory_t, memory_prev, calibration = states[i + 1], states[i], calibrations[i]
                g_r = grad_reads[:, t].unsqueeze(-2)  # [B,1,H]
                g.addcmul_(g_r.transpose(-1, -2), query[:, t].unsqueeze(-2))  # G_t += ∂r_t ⊗ q_t
                grad_query[:, t] = torch.bmm(g_r, memory_t).squeeze(-2)  # M_tᵀ ∂r_t
                grad_value[:, t] = _read(g, key[:, t])  # G_t k_t
                grad_key[:, t] = torch.bmm(value[:, t].unsqueeze(-2), g).squeeze(-2)  # G_tᵀ v_t
                # ∂Z = G ⊙ M_{t-1} ⊙ (1 − tanh²) with 1 − tanh²(Z) = C (2 − C)
                grad_z = torch.rsub(calibration, 2).mul_(calibration).mul_(memory_prev).mul_(g)
                grad_theta[:, t] = _read(grad_z, calib[:, t])  # ∂Z c_t
                grad_calib[:, t] = torch.bmm(theta[:, t].unsqueeze(-2), grad_z).squeeze(-2)  # ∂Zᵀ θ_t
                g.mul_(calibration)  # G_{t-1} = G_t ⊙ C_t
        return grad_theta, grad_calib, grad_value, grad_key, grad_query, g, None


def _check_vectors(memory0: torch.Tensor, **vectors: torch.Tensor) -> tuple[int, int, int]:
    """B, T, H of [B,T,H] inputs and a square memory0 [B,H,H]."""
    check_tensor("memory0", memory0, (None, None, None), "B,H,H")
    batch, size, size2 = memory0.shape
    if size != size2:
        raise ValueError(f"memory0 must be square [B,H,H], got {tuple(memory0.shape)}")
    steps = None
    for name, tensor in vectors.items():
        check_tensor(name, tensor, (batch, steps, size), "B,T,H")
        steps = tensor.shape[1]
    return batch, steps, size


def shm_scan(
    theta: torch.Tensor,
    calib: torch.Tensor,
    value: torch.Tensor,
    key: torch.Tensor,
    query: torch.Tensor,
    memory0: torch.Tensor,
    chunk_size: int | None = None,
    *,
    memory_clamp: float | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SHM recurrence from vectors; equals ``hadamard_scan(1 + tanh(θ⊗c), v⊗k, q, M_0, memory_clamp)``.

    Args:
        theta: θ_t, [B,T,H] (the row of the θ table drawn for each batch element and step).
        calib: c_t = v_c(x_t), [B,T,H].
        value: η_t · v_t, [B,T,H].
        key: k_t, [B,T,H].
        query: q_t, [B,T,H].
        memory0: M_0, [B,H,H]: the inputs' dtype, or float32 with lower-precision inputs (a float32
            state for bfloat16 inputs).
        chunk_size: K, steps between stored states; default ≈ √(T/2).
        memory_clamp: optional c > 0: M_t ← clamp(M_t, −c, c) after every step.
        backend: ``auto`` | ``torch`` | ``compiled`` | ``triton``; default ``$RLLIB_SHM_SCAN`` or
            ``auto`` (``backend.select_backend``).

    Returns:
        reads r [B,T,H] (the inputs' dtype) and the final memory M_T [B,H,H] (``memory0``'s dtype).
    """
    batch, steps, size = _check_vectors(memory0, theta=theta, calib=calib, value=value, key=key, query=query)
    vectors = {"theta": theta, "calib": calib, "value": value, "key": key, "query": query}
    float32_state = memory0.dtype == torch.float32 and theta.dtype in (torch.bfloat16, torch.float16)
    check_same_dtype_device(**vectors, **({} if float32_state else {"memory0": memory0}))
    if float32_state and memory0.device != theta.device:
        raise ValueError(f"all inputs must be on one device, got theta={theta.device}, memory0={memory0.device}")
    chunk = default_chunk_size(steps) if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    check_clamp(memory_clamp)
    if steps == 0:
        return query.new_zeros(batch, 0, size), memory0
    name = select_backend(theta.device, theta.dtype, backend, size=size, clamp=memory_clamp is not None)
    if name == "triton":
        from .triton_scan import triton_shm_scan  # imports triton: only when it runs

        return triton_shm_scan(theta, calib, value, key, query, memory0, chunk)
    if name == "compiled":
        return cpu_kernel.compiled_scan(theta, calib, None, None, value, key, query, memory0, chunk, memory_clamp)
    if memory0.dtype != theta.dtype:  # a float32 state for lower-precision inputs: compute in float32
        reads, memory = shm_scan(*(x.to(memory0.dtype) for x in vectors.values()), memory0, chunk,
                                 memory_clamp=memory_clamp, backend="torch")
        return reads.to(theta.dtype), memory
    if memory_clamp is not None:  # the torch loop has no clamp: the general scan (materialises C)
        calibration = 2 * torch.sigmoid(2 * theta.unsqueeze(-1) * calib.unsqueeze(-2))
        return hadamard_scan(calibration, value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0, memory_clamp)
    return _SHMScan.apply(theta, calib, value, key, query, memory0, chunk)


def table_scan(
    table: torch.Tensor,
    indices: torch.Tensor,
    value: torch.Tensor,
    key: torch.Tensor,
    query: torch.Tensor,
    memory0: torch.Tensor,
    chunk_size: int | None = None,
    *,
    memory_clamp: float | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrence with calibrations from a table: C_t = table[l_t], U_t = v_t ⊗ k_t.

    Equals ``hadamard_scan(table[indices], v⊗k, q, M_0, memory_clamp)``; the compiled backend never
    materialises [B,T,H,H] (the gradient of ``table`` is accumulated row by row). This is how the
    ``fixed_matrix`` (L = 1, all l_t = 0) and ``random_matrix`` ablations run.

    Args:
        table: calibrations, [L,H,H] (e.g. 1 + tanh(W_C)[None]).
        indices: l_t, [B,T] int64 in [0, L).
        value: η_t v_t, [B,T,H].
        key: k_t, [B,T,H].
        query: q_t, [B,T,H].
        memory0: M_0, [B,H,H].
        chunk_size: as in ``shm_scan``.
        memory_clamp: as in ``shm_scan``.
        backend: as in ``shm_scan`` (no ``triton``).

    Returns:
        reads r [B,T,H] and the final memory M_T [B,H,H].
    """
    batch, steps, size = _check_vectors(memory0, value=value, key=key, query=query)
    check_tensor("table", table, (None, size, size), "L,H,H")
    check_tensor("indices", indices, (batch, steps), "B,T", floating=False)
    if indices.dtype != torch.int64:
        raise ValueError(f"indices must be an int64 tensor, got dtype {indices.dtype}")
    check_same_dtype_device(table=table, value=value, key=key, query=query, memory0=memory0)
    if indices.device != memory0.device:
        raise ValueError(f"indices must be on {memory0.device}, got {indices.device}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= table.shape[0]):
        raise ValueError(f"indices must lie in [0, {table.shape[0] - 1}], got values in "
                         f"[{int(indices.min())}, {int(indices.max())}]")
    chunk = default_chunk_size(steps) if chunk_size is None else check_positive_int("chunk_size", chunk_size)
    check_clamp(memory_clamp)
    if steps == 0:
        return query.new_zeros(batch, 0, size), memory0
    if select_backend(memory0.device, memory0.dtype, backend, size=size, clamp=memory_clamp is not None,
                      table=True) == "compiled":
        return cpu_kernel.compiled_scan(None, None, table, indices, value, key, query, memory0, chunk, memory_clamp)
    if table.shape[0] == 1:  # one matrix for every step: a broadcast view, nothing materialised
        calibration = table[0].expand(batch, steps, size, size)
    else:
        calibration = table[indices]
    return hadamard_scan(calibration, value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0, memory_clamp)
