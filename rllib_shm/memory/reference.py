"""The reference code's computation pattern, kept for benchmarks and equality tests only.

The reference SHM (RLlib 2.3 model) materialises C and U for the whole sequence
([B,T,H,H] each), runs a Python loop that reads ``C[:, t]`` and ``U[:, t]``, stacks all states
M_1..M_T ([B,T,H,H]) and reads them with one einsum. Each ``C[:, t]`` select's backward
allocates a full [B,T,H,H] gradient, so backward is O(T²) memory traffic. ``loop="unbind"``
is the same loop over ``unbind(1)`` views, which removes that quadratic term but keeps every
[B,T,H,H] tensor. Both use the parameters of an ``SHMCell`` (``calibration="shm"``) so they
compute exactly what the cell computes, from the same inputs x [B,T,D].
"""

from __future__ import annotations

import torch

from .shm import SHMCell
from .validation import check_choice


def reference_forward(
    cell: SHMCell,
    x: torch.Tensor,
    theta_indices: torch.Tensor,
    memory0: torch.Tensor | None = None,
    loop: str = "index",
) -> tuple[torch.Tensor, torch.Tensor]:
    """y [B,T,O] and M_T [B,H,H] computed the reference code's way (``loop``: index | unbind)."""
    check_choice("loop", loop, ("index", "unbind"))
    if cell.calibration != "shm":
        raise ValueError(f"reference_forward needs calibration='shm', got {cell.calibration!r}")
    x_hat = cell.norm(x)
    key = torch.relu(cell.key(x_hat))
    query = torch.relu(cell.query(x_hat))
    eta = torch.sigmoid(cell.eta(x_hat))
    calib = cell.calib(x_hat)
    theta = cell.thetas[theta_indices]
    calibration = 1.0 + torch.tanh(torch.einsum("bti,btj->btij", theta, calib))
    key = key / (1e-5 + key.sum(dim=-1, keepdim=True))
    query = query / (1e-5 + query.sum(dim=-1, keepdim=True))
    value = cell.value(x_hat)
    update = torch.einsum("bti,btj->btij", eta * value, key)
    memory = cell.initial_state(x.shape[0], x.device)["memory"] if memory0 is None else memory0
    states = []
    if loop == "index":
        for t in range(x.shape[1]):
            memory = memory * calibration[:, t] + update[:, t]
            states.append(memory)
    else:
        for c_t, u_t in zip(calibration.unbind(1), update.unbind(1), strict=True):
            memory = memory * c_t + u_t
            states.append(memory)
    stacked = torch.stack(states, dim=1)
    reads = torch.einsum("btij,btj->bti", stacked, query)
    return cell.out(reads + cell.shortcut(x_hat)), memory
