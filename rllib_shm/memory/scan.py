"""The general Hadamard memory recurrence (HMF), exact in value and gradient.

Dimension letters: B batch, T time, H memory size.

    M_t = M_{t-1} ⊙ C_t + U_t           M_t, C_t, U_t in R^{B×H×H}
    r_t = M_t q_t                        r_t, q_t in R^{B×H}   (r_t[i] = Σ_j M_t[i, j] q_t[j])

This is the reference implementation every faster path is tested against. It runs the
recurrence step by step over views obtained with ``unbind`` (one autograd node per step, no
full-size gradient per ``select``), so memory is O(B·T·H²) for the saved states.
"""

from __future__ import annotations

import torch

from .validation import check_clamp, check_same_dtype_device, check_tensor


def hadamard_scan(
    calibration: torch.Tensor,
    update: torch.Tensor,
    query: torch.Tensor,
    memory0: torch.Tensor,
    memory_clamp: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run M_t = M_{t-1} ⊙ C_t + U_t and read r_t = M_t q_t for t = 1..T.

    Args:
        calibration: C, [B,T,H,H]. May be an expanded (broadcast) view, e.g. an input-independent
            [H,H] calibration ``.expand(B, T, H, H)``.
        update: U, [B,T,H,H].
        query: q, [B,T,H].
        memory0: M_0, [B,H,H].
        memory_clamp: optional bound c > 0: M_t ← clamp(M_t, −c, c) after every step (one
            variant of the reference code; off by default, the recurrence is then exact).

    Returns:
        reads [B,T,H] and the final memory M_T [B,H,H].
    """
    check_tensor("memory0", memory0, (None, None, None), "B,H,H")
    batch, size, size2 = memory0.shape
    if size != size2:
        raise ValueError(f"memory0 must be square [B,H,H], got {tuple(memory0.shape)}")
    check_tensor("query", query, (batch, None, size), "B,T,H")
    steps = query.shape[1]
    check_tensor("calibration", calibration, (batch, steps, size, size), "B,T,H,H")
    check_tensor("update", update, (batch, steps, size, size), "B,T,H,H")
    check_same_dtype_device(calibration=calibration, update=update, query=query, memory0=memory0)
    check_clamp(memory_clamp)

    memory = memory0
    reads = []
    for c_t, u_t, q_t in zip(calibration.unbind(1), update.unbind(1), query.unbind(1), strict=True):
        memory = torch.addcmul(u_t, memory, c_t)  # M_{t-1} ⊙ C_t + U_t
        if memory_clamp is not None:
            memory = memory.clamp(-memory_clamp, memory_clamp)
        reads.append(torch.bmm(memory, q_t.unsqueeze(-1)).squeeze(-1))
    if not reads:
        return query.new_zeros(batch, 0, size), memory
    return torch.stack(reads, dim=1), memory
