"""Memory cells: chunked = whole, θ sampling and replay, calibration bounds, long-horizon gradients."""

import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

from rllib_shm.memory import (
    CALIBRATIONS,
    MemoryConfig,
    SHMCell,
    build_memory,
)
from rllib_shm.memory.reference import reference_forward

D, OUT = 6, 5
ALL_CONFIGS = [MemoryConfig(kind="shm", mem_size=4, num_thetas=8, calibration=c) for c in CALIBRATIONS] + [
    MemoryConfig(kind="shm", mem_size=4, num_thetas=8, theta_mode="fixed"),
    MemoryConfig(kind="shm", mem_size=4, num_thetas=8, memory_clamp=0.5),
    MemoryConfig(kind="shm", mem_size=4, num_thetas=8, key_query="signed"),
    MemoryConfig(kind="shm", mem_size=4, num_thetas=8, recency=4),
    MemoryConfig(kind="gru", mem_size=7),
    MemoryConfig(kind="lstm", mem_size=7),
    MemoryConfig(kind="mlp", mem_size=7),
    MemoryConfig(kind="ffm", mem_size=7, context_size=3),
]


def config_id(config):
    return (f"{config.kind}-{config.calibration}-{config.theta_mode}-clamp{config.memory_clamp}"
            f"-{config.key_query}-recency{config.recency}")


@pytest.fixture()
def x():
    return torch.randn(3, 20, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=config_id)
def test_chunked_sequence_equals_whole_sequence(config, x):
    torch.manual_seed(0)  # parameter init only; no test relies on the global RNG afterwards
    cell = build_memory(config, D, OUT).double()
    y, state, extras = cell(x, return_extras=True)
    pieces, carried = [], None
    for start, stop in ((0, 7), (7, 8), (8, 20)):
        replay = {k: v[:, start:stop] for k, v in extras.items()}
        y_piece, carried = cell(x[:, start:stop], carried, **replay)
        pieces.append(y_piece)
    assert_close(torch.cat(pieces, 1), y, rtol=1e-10, atol=1e-10)
    for key in state:
        assert_close(carried[key], state[key], rtol=1e-10, atol=1e-10)
    if config.kind != "mlp":  # the state actually carries information
        y_fresh, _ = cell(x[:, 8:20], None, **{k: v[:, 8:20] for k, v in extras.items()})
        assert (y_fresh - y[:, 8:20]).abs().max() > 1e-6


def test_random_theta_rows_vary_repeat_per_seed_and_replay_exactly(x):
    cell = SHMCell(D, OUT, 4, num_thetas=16).double()
    _, _, first = cell(x, return_extras=True, generator=torch.Generator().manual_seed(7))
    _, _, again = cell(x, return_extras=True, generator=torch.Generator().manual_seed(7))
    _, _, other = cell(x, return_extras=True, generator=torch.Generator().manual_seed(8))
    indices = first["theta_indices"]
    assert indices.dtype == torch.int64 and indices.shape == (3, 20)
    assert len(indices.unique()) >= 10  # 60 draws from 16 rows
    assert (indices[:, 1:] != indices[:, :-1]).any() and (indices[0] != indices[1]).any()
    assert torch.equal(indices, again["theta_indices"])
    assert not torch.equal(indices, other["theta_indices"])
    y_drawn, state_drawn = cell(x, generator=torch.Generator().manual_seed(7))
    y_replay, state_replay, replayed = cell(x, theta_indices=indices, return_extras=True)
    assert torch.equal(y_drawn, y_replay) and torch.equal(state_drawn["memory"], state_replay["memory"])
    assert torch.equal(replayed["theta_indices"], indices)
    y_other, _ = cell(x, theta_indices=other["theta_indices"])
    assert (y_other - y_drawn).abs().max() > 1e-8  # the draw matters


def test_fixed_theta_mode_uses_row_zero(x):
    cell = SHMCell(D, OUT, 4, theta_mode="fixed").double()
    _, _, extras = cell(x, return_extras=True)
    assert torch.equal(extras["theta_indices"], torch.zeros(3, 20, dtype=torch.long))


def test_cell_own_generator_is_seeded_not_global(x):
    a, b = SHMCell(D, OUT, 4, seed=3), SHMCell(D, OUT, 4, seed=3)
    torch.manual_seed(0)
    ia = a(x.float(), return_extras=True)[2]["theta_indices"]
    torch.manual_seed(123)
    ib = b(x.float(), return_extras=True)[2]["theta_indices"]
    assert torch.equal(ia, ib)


@pytest.mark.parametrize("calibration", CALIBRATIONS)
def test_every_calibration_entry_in_open_interval_0_2(calibration, x):
    cell = SHMCell(D, OUT, 8, calibration=calibration).double()
    trace = cell.trace(x * 3)
    c = trace["calibration"]
    assert c.shape == (3, 20, 8, 8)
    assert (c > 0).all() and (c < 2).all()
    y, state = cell(x * 3, theta_indices=trace["theta_indices"])
    assert_close(trace["y"], y)
    assert_close(trace["memory"][:, -1], state["memory"])


def test_eval_modes(x):
    cell = SHMCell(D, OUT, 4, eval_theta="expected").double().eval()
    y1, _, extras = cell(x, return_extras=True)
    y2, _ = cell(x)
    assert extras == {} and torch.equal(y1, y2)  # deterministic
    trace = cell.trace(x)
    expected = 1 + torch.tanh(cell.thetas[None, :, :, None] * cell.calib(cell.norm(x))[:, :, None, None, :])
    assert_close(trace["calibration"], expected.mean(2))
    sampling = SHMCell(D, OUT, 4, eval_theta="sample").double().eval()
    _, _, drawn = sampling(x, return_extras=True)
    assert drawn["theta_indices"].shape == (3, 20)


@pytest.mark.parametrize("loop", ["index", "unbind"])
def test_fused_cell_equals_reference_pattern(loop, x):
    cell = SHMCell(D, OUT, 5, num_thetas=8, chunk_size=6).double()
    x = x.clone().requires_grad_()
    y, state, extras = cell(x, return_extras=True)
    y_ref, memory_ref = reference_forward(cell, x, extras["theta_indices"], loop=loop)
    assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    assert_close(state["memory"], memory_ref, rtol=1e-10, atol=1e-10)
    params = [x, *cell.parameters()]
    grads = torch.autograd.grad(y.square().sum(), params)
    ref_grads = torch.autograd.grad(y_ref.square().sum(), params)
    for g, ref in zip(grads, ref_grads, strict=True):
        assert_close(g, ref, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    ("calibration", "theta_mode"),
    [("shm", "random"), ("shm", "fixed"), ("none", "random"), ("fixed_matrix", "random")],
)
def test_gradient_reaches_first_inputs_over_1000_steps(calibration, theta_mode):
    """At initialisation. Two ablations are left out on purpose, they show the failure modes the
    paper's random θ is designed to avoid: ``neural_theta`` (θ_t and c_t both O(1) saturate tanh,
    C_t → 2 on consistent-sign entries and M overflows within a few hundred steps) and
    ``random_matrix`` (C_t = 1 + tanh(N(0, 1)) has E[log C] ≈ −0.37, so ∏C underflows to 0)."""
    torch.manual_seed(0)
    cell = SHMCell(16, 8, 16, calibration=calibration, theta_mode=theta_mode)
    x = torch.randn(2, 1000, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y, _ = cell(x)
    y[:, -1].sum().backward()
    first = x.grad[:, :10]
    assert torch.isfinite(x.grad).all()
    assert first.abs().max() > 0, "no gradient from step 1000 back to the first inputs"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"theta_mode": "sometimes"}, "theta_mode must be one of 'random', 'fixed'; got 'sometimes'"),
        ({"calibration": "magic"}, "calibration must be one of"),
        ({"eval_theta": "mean"}, "eval_theta must be one of"),
        ({"mem_size": 0}, "mem_size must be a positive integer, got 0"),
        ({"num_thetas": -3}, "num_thetas must be a positive integer, got -3"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"memory_clamp": 0}, "memory_clamp must be a positive finite number"),
        ({"memory_clamp": True}, "memory_clamp must be a positive finite number"),
        ({"memory_clamp": float("inf")}, "memory_clamp must be a positive finite number"),
        ({"memory_clamp": float("nan")}, "memory_clamp must be a positive finite number"),
        ({"key_query": "tanh"}, "key_query must be one of 'relu', 'signed'; got 'tanh'"),
        ({"recency": 1}, r"recency must be 0 \(off\) or a window width ≥ 2 \(an int\), got 1"),
        ({"recency": -2}, "recency must be 0 .* got -2"),
        ({"recency": 2.5}, "recency must be 0 .* got 2.5"),
        ({"recency": True}, "recency must be 0 .* got True"),
    ],
)
def test_shm_cell_rejects_bad_arguments(kwargs, message):
    args = {"input_size": D, "output_size": OUT, "mem_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        SHMCell(**args)


def test_cells_reject_bad_inputs():
    cell = SHMCell(D, OUT, 4, num_thetas=8)
    with pytest.raises(ValueError, match=r"x must have rank 3 \[B,T,D\]"):
        cell(torch.randn(5, D))
    with pytest.raises(ValueError, match=r"x must have shape \[B,T,D\]"):
        cell(torch.randn(2, 5, D + 1))
    with pytest.raises(ValueError, match="state must have keys"):
        cell(torch.randn(2, 5, D), {"h": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match=r"state\['memory'\] must have shape"):
        cell(torch.randn(2, 5, D), {"memory": torch.zeros(3, 4, 4)})
    with pytest.raises(ValueError, match="is torch.float64"):
        cell(torch.randn(2, 5, D), {"memory": torch.zeros(2, 4, 4, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"theta_indices must lie in \[0, 7\]"):
        cell(torch.randn(2, 5, D), theta_indices=torch.full((2, 5), 8))
    with pytest.raises(ValueError, match="theta_indices must have shape"):
        cell(torch.randn(2, 5, D), theta_indices=torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        cell.initial_state(0)


def test_memory_config_rejects_unknown_keys_and_kinds():
    with pytest.raises(ValueError, match=r"unknown memory config key\(s\) \['mem_sise'\]; valid keys"):
        MemoryConfig.from_dict({"mem_sise": 4})
    with pytest.raises(ValueError, match="kind must be one of 'shm', 'gru', 'lstm', 'mlp', 'ffm'; got 'transformer'"):
        MemoryConfig(kind="transformer")
    assert MemoryConfig.from_dict({"kind": "gru", "mem_size": 3}).mem_size == 3


def test_memory_math_and_envs_do_not_import_ray():
    code = "import sys, rllib_shm.memory, envs; assert 'ray' not in sys.modules, 'ray imported'; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
