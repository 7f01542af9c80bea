"""FFM: the chunked parallel form equals the step-by-step loop in value and gradient, never overflows,
and the cell follows the interface (state real [B,M,C,2], carried state)."""

import pytest
import torch
from torch.testing import assert_close

from rllib_shm.memory import FFMCell, MemoryConfig, build_memory
from rllib_shm.memory.ffm import ffm_loop, ffm_scan


def inputs(batch=2, steps=37, trace=5, context=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, trace, generator=gen, dtype=torch.float64)
    alpha = -torch.rand(trace, generator=gen, dtype=torch.float64) * 0.3 - 1e-3
    omega = torch.rand(context, generator=gen, dtype=torch.float64) * 3
    log_gamma = torch.complex(alpha[:, None].expand(-1, context), omega[None, :].expand(trace, -1))
    trace0 = torch.complex(*torch.randn(2, batch, trace, context, generator=gen, dtype=torch.float64))
    return x, log_gamma, trace0


@pytest.mark.parametrize("chunk", [1, 4, 37, 64])
def test_parallel_form_equals_the_loop_in_value_and_gradient(chunk):
    x, log_gamma, trace0 = inputs()
    leaves = [t.clone().requires_grad_() for t in (x, log_gamma, trace0)]
    refs = [t.clone().requires_grad_() for t in (x, log_gamma, trace0)]
    traces, last = ffm_scan(*leaves, chunk_size=chunk)
    want, want_last = ffm_loop(*refs)
    assert_close(traces, want, rtol=1e-10, atol=1e-10)
    assert_close(last, want_last, rtol=1e-10, atol=1e-10)
    weights = torch.randn(traces.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (torch.view_as_real(traces).sum(-1) * weights).sum().backward()
    (torch.view_as_real(want).sum(-1) * weights).sum().backward()
    for got, expected in zip(leaves, refs, strict=True):
        assert_close(got.grad, expected.grad, rtol=1e-9, atol=1e-9)


def test_long_sequences_stay_finite_in_float32():
    """The cumulative form Σ γ^{−k} x̃_k over the whole sequence would overflow float32 after ~88/|α|
    steps; restarted every chunk, with the chunk capped by the fastest decay, it never does."""
    x, log_gamma, trace0 = inputs(batch=1, steps=4096, trace=4, context=2)
    log_gamma = torch.complex(torch.full((4, 2), -2.0, dtype=torch.float64), log_gamma.imag)
    traces, last = ffm_scan(x.float(), log_gamma.to(torch.complex64), trace0.to(torch.complex64))
    assert torch.isfinite(torch.view_as_real(traces)).all()
    want, _ = ffm_loop(x.float(), log_gamma.to(torch.complex64), trace0.to(torch.complex64))
    assert_close(traces, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("alpha", [-0.5, -30.0, -200.0])
def test_fast_decays_shorten_the_chunk_and_stay_exact(alpha):
    """|α| beyond MAX_GROWTH / K: the chunk shrinks (down to one step), values still equal the loop."""
    x, log_gamma, trace0 = inputs(batch=2, steps=150, trace=4, context=3)
    alphas = torch.tensor([alpha, -0.01, -1.0, -3.0], dtype=torch.float64)
    log_gamma = torch.complex(alphas[:, None].expand(-1, 3), log_gamma.imag).to(torch.complex64)
    traces, last = ffm_scan(x.float(), log_gamma, trace0.to(torch.complex64), chunk_size=64)
    want, want_last = ffm_loop(x.float(), log_gamma, trace0.to(torch.complex64))
    assert torch.isfinite(torch.view_as_real(traces)).all()
    assert_close(traces, want, rtol=1e-4, atol=1e-5)
    assert_close(last, want_last, rtol=1e-4, atol=1e-5)


def test_cell_state_is_real_and_decays_clamped():
    cell = FFMCell(6, 5, trace_size=4, context_size=3)
    state = cell.initial_state(2)
    assert state["trace"].shape == (2, 4, 3, 2) and state["trace"].dtype == torch.float32
    with torch.no_grad():
        cell.decay.fill_(0.5)  # a positive α would make the trace grow: clamped to −1e-4
    assert (cell.log_gamma().real <= -1e-4).all()
    y, new = cell(torch.randn(2, 9, 6, generator=torch.Generator().manual_seed(0)), state)
    assert y.shape == (2, 9, 5) and torch.isfinite(y).all() and new["trace"].abs().sum() > 0


def test_config_builds_ffm_with_its_context_size():
    cell = build_memory(MemoryConfig(kind="ffm", mem_size=32, context_size=8), 16, 64)
    assert isinstance(cell, FFMCell) and cell.state_shapes() == {"trace": (32, 8, 2)}
    with pytest.raises(ValueError, match="context_size must be a positive integer"):
        MemoryConfig(kind="ffm", context_size=0)


def test_trace_is_drawable_and_matches_the_state():
    cell = FFMCell(6, 5, trace_size=4, context_size=3)
    x = torch.randn(2, 9, 6, generator=torch.Generator().manual_seed(0))
    recorded = cell.trace(x)
    _, state = cell(x)
    assert recorded["memory"].shape == (2, 9, 12)  # |S_t| as a vector per step
    assert_close(recorded["trace"][:, -1], state["trace"])
