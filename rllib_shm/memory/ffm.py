"""Fast and Forgetful Memory (FFM; Morad et al., NeurIPS 2023) behind the cell interface.

Dimension letters: B batch, T time, D input width, M trace size (``mem_size``), C context size,
O output width, K chunk length.

With x̂_t = LayerNorm(x_t):

    x̃_t = W_x x̂_t ⊙ σ(W_in x̂_t)                                   [B,T,M]
    γ_jl = exp(α_j + i ω_l),  α_j ≤ −1e-4 (clamped negative),  ω_l   [M,C] complex
    S_t = γ ⊙ S_{t−1} + x̃_t 1ᵀ                                      [B,M,C] complex, S_0 = 0
    z_t = LayerNorm(W_mix [Re S_t, Im S_t])                          [B,T,O]
    g_t = σ(W_out x̂_t)
    y_t = z_t ⊙ g_t + W_skip x̂_t ⊙ (1 − g_t)                         [B,T,O]

α starts at −1/τ for time constants τ log-spaced over 1…1024 steps; ω_l = 2π / period_l with
periods log-spaced over 1…1024 (both learned). The state is kept real for RLlib:
``{"trace": [B,M,C,2]}`` (real and imaginary parts).

The recurrence runs in its parallel (cumulative) form, one chunk of n ≤ K steps at a time:

    S_{t0+n} = γ^n (S_{t0} + Σ_{k=1..n} γ^{−k} x̃_{t0+k})        (a cumulative sum over the chunk)

O(T·M·C) work and memory, like the loop, but a handful of tensor operations per chunk. Over a
whole sequence γ^{−k} would overflow float32 after ~88/|α| steps; restarting the sum every chunk
and capping the chunk at K ≤ ``MAX_GROWTH`` / max|α| steps bounds every |γ^{−k}| by
e^{MAX_GROWTH}, however long the sequence; a decay faster than that runs one step at a time.
The result is γ^n times the sum, so its rounding error stays at float precision relative to |x̃|
(no cancellation). ``ffm_loop`` is the step-by-step reference.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import MemoryCell, State
from .validation import check_positive_int

MAX_DECAY = -1e-4  # α ≤ this: |γ| < 1, the trace forgets
MAX_GROWTH = 40.0  # |γ^{−k}| ≤ e^40 ≈ 2.4e17 within a chunk (float32 holds 3.4e38)


def ffm_scan(x_tilde: torch.Tensor, log_gamma: torch.Tensor, trace0: torch.Tensor,
             chunk_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """S_t for t = 1..T in the chunked cumulative form.

    Args:
        x_tilde: x̃, [B,T,M] real.
        log_gamma: α + iω, [M,C] complex (α < 0).
        trace0: S_0, [B,M,C] complex.
        chunk_size: K, the longest chunk (shorter where the fastest decay needs it).

    Returns:
        traces S [B,T,M,C] complex and the final S_T [B,M,C].
    """
    fastest = float(-log_gamma.real.detach().min())  # max |α|
    chunk = max(1, min(chunk_size, int(MAX_GROWTH / fastest))) if fastest > 0 else chunk_size
    traces, trace = [], trace0
    x_complex = x_tilde.to(log_gamma.dtype)
    for start in range(0, x_tilde.shape[1], chunk):
        block = x_complex[:, start:start + chunk]  # [B,n,M]
        if block.shape[1] == 1:  # one step: S = γ S + x̃ (no γ^{−1}, which overflows when |α| > MAX_GROWTH)
            trace = torch.exp(log_gamma) * trace + block[:, 0, :, None]
            traces.append(trace[:, None])
            continue
        steps = torch.arange(1, block.shape[1] + 1, device=x_tilde.device, dtype=log_gamma.real.dtype)
        exponents = steps[:, None, None] * log_gamma  # n (α + iω), [n,M,C]
        summed = torch.cumsum(torch.exp(-exponents) * block[..., None], dim=1)  # Σ γ^{−k} x̃_k, [B,n,M,C]
        block_traces = torch.exp(exponents) * (summed + trace[:, None])
        traces.append(block_traces)
        trace = block_traces[:, -1]
    return torch.cat(traces, 1), trace


def ffm_loop(x_tilde: torch.Tensor, log_gamma: torch.Tensor, trace0: torch.Tensor):
    """Reference: S_t = γ ⊙ S_{t−1} + x̃_t 1ᵀ step by step (same arguments and returns as ``ffm_scan``)."""
    gamma, trace, traces = torch.exp(log_gamma), trace0, []
    for x_t in x_tilde.to(log_gamma.dtype).unbind(1):
        trace = gamma * trace + x_t[..., None]
        traces.append(trace)
    return torch.stack(traces, 1), trace


class FFMCell(MemoryCell):
    """FFM: ``cell(x [B,T,D], {"trace": [B,M,C,2]}) -> (y [B,T,O], {"trace": [B,M,C,2]})``.

    Examples:
        >>> cell = FFMCell(input_size=8, output_size=16, trace_size=4, context_size=3)
        >>> y, state = cell(torch.randn(2, 5, 8))
        >>> y.shape, state["trace"].shape
        (torch.Size([2, 5, 16]), torch.Size([2, 4, 3, 2]))
    """

    def __init__(self, input_size: int, output_size: int, trace_size: int, context_size: int = 8,
                 chunk_size: int = 64) -> None:
        super().__init__(input_size, output_size)
        self.trace_size = check_positive_int("trace_size", trace_size)
        self.context_size = check_positive_int("context_size", context_size)
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        self.norm = nn.LayerNorm(input_size)
        self.pre = nn.Linear(input_size, trace_size)
        self.gate_in = nn.Linear(input_size, trace_size)
        self.mix = nn.Linear(2 * trace_size * context_size, output_size)
        self.mix_norm = nn.LayerNorm(output_size)
        self.gate_out = nn.Linear(input_size, output_size)
        self.skip = nn.Linear(input_size, output_size)
        time_constants = torch.logspace(0, 10, trace_size, base=2.0)  # 1 … 1024 steps
        self.decay = nn.Parameter(-1.0 / time_constants)  # α
        periods = torch.logspace(0, 10, context_size, base=2.0)
        self.frequency = nn.Parameter(2 * math.pi / periods)  # ω

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"trace": (self.trace_size, self.context_size, 2)}

    def log_gamma(self) -> torch.Tensor:
        """α + iω, [M,C] complex, with α clamped to ≤ −1e-4."""
        alpha = self.decay.clamp(max=MAX_DECAY)
        return torch.complex(alpha[:, None].expand(-1, self.context_size),
                             self.frequency[None, :].expand(self.trace_size, -1))

    def _run(self, x, state: State):
        x_hat = self.norm(x)
        x_tilde = self.pre(x_hat) * torch.sigmoid(self.gate_in(x_hat))
        trace0 = torch.view_as_complex(state["trace"].contiguous())
        traces, trace = ffm_scan(x_tilde, self.log_gamma(), trace0, self.chunk_size)
        mixed = self.mix_norm(self.mix(torch.view_as_real(traces).movedim(-1, -3).flatten(-3)))
        gate = torch.sigmoid(self.gate_out(x_hat))
        y = mixed * gate + self.skip(x_hat) * (1 - gate)
        return y, {"trace": torch.view_as_real(trace)}, {}

    @torch.no_grad()
    def trace(self, x: torch.Tensor, state: State | None = None, **extras) -> dict[str, torch.Tensor]:
        """What the trace held after every step of x [B,T,D]: ``memory`` |S_t| flattened to
        [B,T,M·C] (a vector per step, drawn like a GRU's h_t), ``trace`` S_t [B,T,M,C,2] and ``y``."""
        state = self.initial_state(x.shape[0], x.device) if state is None else state
        self._check_state(state, x)
        x_hat = self.norm(x)
        x_tilde = self.pre(x_hat) * torch.sigmoid(self.gate_in(x_hat))
        traces, _ = ffm_scan(x_tilde, self.log_gamma(), torch.view_as_complex(state["trace"].contiguous()),
                             self.chunk_size)
        y, _, _ = self._run(x, state)
        return {"memory": traces.abs().flatten(-2), "trace": torch.view_as_real(traces), "y": y}
