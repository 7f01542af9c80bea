"""SHM's two non-paper options (signed keys and queries; the recency path) against a step-by-step
reference written from the equations, and their defaults against the paper's cell."""

import pytest
import torch
from torch.testing import assert_close

from rllib_shm.memory import MemoryConfig, SHMCell, build_memory

D, OUT, H = 6, 5, 4


def _x(batch=3, steps=12, seed=0):
    return torch.randn(batch, steps, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _cell(**options):
    torch.manual_seed(0)  # parameter init only
    cell = SHMCell(D, OUT, H, num_thetas=8, **options).double()
    if cell.recency:  # away from the identity initialisation, so the mix is exercised
        with torch.no_grad():
            cell.recency_weights.copy_(torch.randn(cell.recency, D, generator=torch.Generator().manual_seed(3)))
    return cell


def _reference(cell: SHMCell, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """y [B,T,O] one step at a time, from the module docstring's equations (no scan, no stacking)."""
    batch, steps = x.shape[:2]
    memory = torch.zeros(batch, H, H, dtype=x.dtype)
    x_hat = cell.norm(x)
    outputs = []
    for t in range(steps):
        if cell.recency:  # x̃_t = Σ_{j<w} a_j ⊙ x̂_{t−j}, x̂ before t = 0 is zero
            mixed = sum(cell.recency_weights[j] * x_hat[:, t - j] for j in range(cell.recency) if t - j >= 0)
        else:
            mixed = x_hat[:, t]
        k, q = cell.key(mixed), cell.query(mixed)
        if cell.key_query == "relu":
            k, q = torch.relu(k), torch.relu(q)
            k, q = k / (1e-5 + k.sum(-1, keepdim=True)), q / (1e-5 + q.sum(-1, keepdim=True))
        else:
            k, q = k / (1e-5 + k.abs().sum(-1, keepdim=True)), q / (1e-5 + q.abs().sum(-1, keepdim=True))
        theta = cell.thetas[rows[:, t]]
        calibration = 1 + torch.tanh(theta[:, :, None] * cell.calib(mixed)[:, None, :])
        update = (torch.sigmoid(cell.eta(mixed)) * cell.value(mixed))[:, :, None] * k[:, None, :]
        memory = memory * calibration + update
        read = torch.einsum("bij,bj->bi", memory, q)
        outputs.append(cell.out(read + cell.shortcut(mixed)))
    return torch.stack(outputs, 1)


@pytest.mark.parametrize("options", [{"key_query": "signed"}, {"recency": 3}, {"key_query": "signed", "recency": 5}],
                         ids=["signed", "recency3", "signed-recency5"])
def test_options_equal_a_step_by_step_reference_in_value_and_gradient(options):
    cell = _cell(**options)
    x = _x().requires_grad_(True)
    y, _, extras = cell(x, return_extras=True)
    expected = _reference(cell, x, extras["theta_indices"])
    assert_close(y, expected, rtol=1e-10, atol=1e-12)
    params = [p for p in cell.parameters()]
    grads = torch.autograd.grad(y.square().sum(), [x, *params])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, *params])
    for got, want in zip(grads, expected_grads, strict=True):
        assert_close(got, want, rtol=1e-9, atol=1e-11)
    with torch.no_grad():  # acting (no autograd) takes the general path too, and agrees
        acted, _ = cell(x.detach(), theta_indices=extras["theta_indices"])
    assert_close(acted, expected.detach(), rtol=1e-10, atol=1e-12)


def test_signed_keys_and_queries_take_both_signs_and_keep_the_l1_bound():
    cell = _cell(key_query="signed")
    projections = cell._projections(_x(), None)
    for name in ("key", "query"):
        vector = getattr(projections, name)
        assert (vector < 0).any() and (vector > 0).any(), name
        assert vector.abs().sum(-1).max() <= 1.0, name
    paper = _cell()._projections(_x(), None)
    assert (paper.key >= 0).all() and (paper.query >= 0).all()


def test_a_new_recency_cell_computes_what_the_papers_cell_computes():
    torch.manual_seed(0)
    paper = SHMCell(D, OUT, H, num_thetas=8).double()
    torch.manual_seed(0)
    recency = SHMCell(D, OUT, H, num_thetas=8, recency=4).double()
    identity = torch.zeros(4, D, dtype=torch.float64)
    identity[0] = 1.0  # a_0 = 1, a_1..a_3 = 0
    assert_close(recency.recency_weights.detach(), identity)
    rows = torch.randint(0, 8, (3, 12), generator=torch.Generator().manual_seed(1))
    y_paper, _ = paper(_x(), theta_indices=rows)
    y_recency, state = recency(_x(), theta_indices=rows)
    assert_close(y_recency, y_paper, rtol=1e-12, atol=1e-12)
    assert set(state) == {"memory", "recent"} and state["recent"].shape == (3, 3, D)
    assert_close(state["recent"], recency.norm(_x())[:, -3:])  # the last w − 1 = 3 inputs x̂


def test_the_recency_state_carries_inputs_across_calls_shorter_than_the_window():
    cell = _cell(recency=5)
    x = _x(steps=7)
    y, _, extras = cell(x, return_extras=True)
    pieces, state = [], None
    for t in range(7):  # one step at a time: each call is shorter than the window
        y_t, state = cell(x[:, t:t + 1], state, theta_indices=extras["theta_indices"][:, t:t + 1])
        pieces.append(y_t)
    assert_close(torch.cat(pieces, 1), y, rtol=1e-10, atol=1e-12)


def test_options_reach_the_cell_from_the_config_and_default_to_the_paper():
    cell = build_memory(MemoryConfig(kind="shm", mem_size=H, key_query="signed", recency=3), D, OUT)
    assert (cell.key_query, cell.recency) == ("signed", 3)
    assert cell.state_shapes() == {"memory": (H, H), "recent": (2, D)}
    paper = build_memory(MemoryConfig(kind="shm", mem_size=H), D, OUT)
    assert (paper.key_query, paper.recency) == ("relu", 0)
    assert paper.state_shapes() == {"memory": (H, H)} and not hasattr(paper, "recency_weights")
    with pytest.raises(ValueError, match="recency must be 0 .* got 1"):
        MemoryConfig(recency=1)
    with pytest.raises(ValueError, match="key_query must be one of 'relu', 'signed'; got 'abs'"):
        MemoryConfig.from_dict({"key_query": "abs"})
