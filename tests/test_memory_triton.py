"""The Triton SHM scan under Triton's interpreter (CPU tensors; the root conftest sets
``TRITON_INTERPRET=1`` before triton is imported): values and every gradient against
``hadamard_scan``, and the backend choice.

The interpreter runs each program step by step in numpy (~10 ms per program and step), so the
shapes are small: what they cover is the index arithmetic (several row tiles, a masked last tile,
H not a power of two, T not a multiple of the chunk), the numerics (C near 0 and 2), the dtypes,
and both ways of summing the column gradients (atomics; per-tile partial sums).
"""

import importlib

import pytest
import torch

from rllib_shm.memory import SHMCell, hadamard_scan, shm_scan
from rllib_shm.memory.kernels.backend import BACKEND_ENV, resolve_backend

pytest.importorskip("triton")
triton_scan = importlib.import_module("rllib_shm.memory.kernels.triton_scan")  # after the skip: needs triton
NAMES = ("theta", "calib", "value", "key", "query", "memory0")
NAMES_OUT = ("reads", "memory_T", *(f"grad {n}" for n in NAMES))


if not triton_scan.interpreted():
    pytest.skip("Triton was imported without its interpreter (TRITON_INTERPRET=0?): these tests run the kernels "
                "on CPU tensors; tests/test_memory_triton_cuda.py checks the compiled kernels on a GPU",
                allow_module_level=True)


def vectors(batch, steps, size, generator, scale=1.0):
    """θ, c, v, k, q [B,T,H] and M_0 [B,H,H], float64; θ ⊗ c scaled by ``scale``²."""
    theta, calib = (scale * torch.randn(batch, steps, size, generator=generator, dtype=torch.float64)
                    for _ in range(2))
    rest = [torch.randn(batch, steps, size, generator=generator, dtype=torch.float64) for _ in range(3)]
    return [theta, calib, *rest, torch.randn(batch, size, size, generator=generator, dtype=torch.float64)]


def reference(theta, calib, value, key, query, memory0):
    calibration = 1 + torch.tanh(theta.unsqueeze(-1) * calib.unsqueeze(-2))
    return hadamard_scan(calibration, value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0)


def outputs_and_grads(scan, inputs, weights, loss="both"):
    """reads, M_T and the gradients of Σ w ⊙ r + Σ M_T² (or one of the two terms) for every input."""
    inputs = [t.detach().requires_grad_() for t in inputs]
    reads, final = scan(*inputs)
    terms = {"reads": (reads * weights.to(reads.dtype)).sum(), "final": final.square().sum()}
    objective = terms["reads"] + terms["final"] if loss == "both" else terms[loss]
    grads = torch.autograd.grad(objective, inputs, allow_unused=True)
    grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True)]
    return [reads.detach(), final.detach(), *grads]


def assert_relative(results, expected, tolerance, what, skip=()):
    """max |a − b| ≤ tolerance · max |b| for each tensor (each gradient on its own scale)."""
    for label, got, want in zip(NAMES_OUT, results, expected, strict=True):
        if label in skip:
            continue
        assert torch.isfinite(got).all(), f"{what}: {label} not finite"
        error = (got.double() - want.double()).abs().max() / want.double().abs().max().clamp_min(1e-30)
        assert error <= tolerance, f"{what}: {label} off by {float(error):.2e} (relative to its max)"


def triton(chunk=4, **options):
    return lambda *inputs: triton_scan.triton_shm_scan(*inputs, chunk, **options)


@pytest.mark.parametrize(
    ("batch", "steps", "size", "chunk", "block_rows", "deterministic"),
    [
        (2, 9, 5, 4, None, False),  # one tile (16 × 16, H = 5 masked), T = 9 = 4 + 4 + 1
        (1, 7, 10, 3, 4, False),  # 3 row tiles, the last half masked; column gradients by atomics
        (1, 7, 10, 3, 4, True),  # same, by per-tile partial sums (deterministic algorithms on)
        (1, 7, 6, 20, 2, False),  # one chunk longer than T
        (1, 5, 3, 1, None, False),  # a boundary at every step
    ],
)
def test_triton_scan_equals_hadamard_scan_float32(batch, steps, size, chunk, block_rows, deterministic):
    gen = torch.Generator().manual_seed(steps * 100 + size)
    inputs64 = vectors(batch, steps, size, gen)
    weights = torch.randn(batch, steps, size, generator=gen, dtype=torch.float64)
    inputs32 = [t.float() for t in inputs64]
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        got = outputs_and_grads(triton(chunk=chunk, block_rows=block_rows), inputs32, weights)
    finally:
        torch.use_deterministic_algorithms(before)
    assert_relative(got, outputs_and_grads(reference, inputs32, weights), 1e-4, "vs float32 hadamard_scan")
    assert_relative(got, outputs_and_grads(reference, inputs64, weights), 1e-5, "vs float64 hadamard_scan")


@pytest.mark.parametrize("loss", ["reads", "final"])
def test_triton_scan_one_output_used(loss):
    """Backward with no gradient into M_T (``reads``) or none into the reads (``final``)."""
    gen = torch.Generator().manual_seed(7)
    inputs = [t.float() for t in vectors(2, 5, 5, gen)]
    weights = torch.randn(2, 5, 5, generator=gen, dtype=torch.float64)
    got = outputs_and_grads(triton(chunk=4, block_rows=4), inputs, weights, loss)
    assert_relative(got, outputs_and_grads(reference, inputs, weights, loss), 1e-4, loss)


def test_triton_scan_calibration_near_0_and_2():
    """|θ_i c_j| ≥ 3: every C entry is within 5e-3 of 0 or of 2, where 1 + tanh and 1 − tanh² lose
    digits in float32; the kernel's forms (2/(1+e), 4e/(1+e)², e = exp(−2|θc|)) do not. Against the
    float64 reference, including ∂θ and ∂c, which pass through C (2 − C) ≈ 1e-2 … 1e-5."""
    gen = torch.Generator().manual_seed(8)
    theta, calib, value, key, query, memory0 = vectors(2, 10, 6, gen)
    theta = torch.where(theta >= 0, 1.0, -1.0) * (1.5 + 0.5 * theta.abs().clamp(max=3))
    calib = torch.where(calib >= 0, 1.0, -1.0) * (2.0 + 0.5 * calib.abs().clamp(max=3))
    inputs = [theta, calib, value, key, query, memory0]
    calibration = 1 + torch.tanh(theta.unsqueeze(-1) * calib.unsqueeze(-2))
    assert ((calibration < 5e-3) | (calibration > 2 - 5e-3)).all()
    assert (calibration < 5e-3).any() and (calibration > 2 - 5e-3).any()
    weights = torch.randn(2, 10, 6, generator=gen, dtype=torch.float64)
    got = outputs_and_grads(triton(chunk=3), [t.float() for t in inputs], weights)
    assert_relative(got, outputs_and_grads(reference, inputs, weights), 1e-4, "near 0 and 2")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_triton_scan_low_precision_inputs_float32_state(dtype):
    """bfloat16 / float16 inputs, float32 M_0: the state stays float32 inside, so M_T matches the
    float64 recurrence of the same (rounded) inputs to 1e-4 (a bfloat16 state: ~1e-2); the reads and input
    gradients come back in the inputs' dtype (rounding: 2⁻⁸ resp. 2⁻¹¹ relative)."""
    gen = torch.Generator().manual_seed(9)
    inputs = vectors(2, 7, 6, gen)
    low = [t.to(dtype) for t in inputs[:5]] + [inputs[5].float()]
    exact = [t.double() for t in low]
    weights = torch.randn(2, 7, 6, generator=gen).to(dtype).double()  # exact in both precisions
    got = outputs_and_grads(triton(chunk=3, block_rows=4), low, weights)
    assert [t.dtype for t in got] == [dtype, torch.float32, *[dtype] * 5, torch.float32]
    expected = outputs_and_grads(reference, exact, weights)
    state = ("memory_T", "grad memory0")
    assert_relative(got, expected, 1e-4, "float32 state", skip=set(NAMES_OUT) - set(state))
    rounding = 2**-7 if dtype == torch.bfloat16 else 2**-10
    assert_relative(got, expected, rounding, f"{dtype} outputs")


def test_shm_cell_on_triton_backend_replays_theta_and_matches_torch(monkeypatch):
    """An SHM cell (replayed θ rows, a carried state) through ``shm_scan``'s triton backend equals
    the torch backend in output, state and every parameter gradient; also without gradients."""
    gen = torch.Generator().manual_seed(10)
    cell = SHMCell(input_size=5, output_size=4, mem_size=6, num_thetas=8, chunk_size=3)
    x = torch.randn(2, 7, 5, generator=gen)
    state = {"memory": torch.randn(2, 6, 6, generator=gen)}
    indices = cell.draw_indices(2, 7, gen)
    results = {}
    for backend in ("torch", "triton"):
        monkeypatch.setenv(BACKEND_ENV, backend)
        cell.zero_grad()
        y, new_state = cell(x, {"memory": state["memory"]}, theta_indices=indices)
        (y.square().sum() + new_state["memory"].sum()).backward()
        with torch.no_grad():
            y_eval, _ = cell(x, {"memory": state["memory"]}, theta_indices=indices)
        grads = [p.grad.clone() for p in cell.parameters()]
        results[backend] = [y.detach(), new_state["memory"].detach(), y_eval, *grads]
    for got, want in zip(results["triton"], results["torch"], strict=True):
        assert (got - want).abs().max() <= 1e-5 * want.abs().max()


def test_backend_choice(monkeypatch):
    theta = torch.zeros(1, 2, 4)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert resolve_backend(None, theta) in ("compiled", "torch")  # CPU tensors: never Triton by default
    assert resolve_backend("triton", theta) == "triton"
    monkeypatch.setenv(BACKEND_ENV, "triton")
    assert resolve_backend(None, theta) == "triton" and resolve_backend("torch", theta) == "torch"
    monkeypatch.setenv(BACKEND_ENV, "cuda")
    message = r"\$RLLIB_SHM_SCAN must be one of 'auto', 'torch', 'compiled', 'triton'; got 'cuda'"
    with pytest.raises(ValueError, match=message):
        resolve_backend(None, theta)
    with pytest.raises(ValueError, match="backend must be one of"):
        shm_scan(*[torch.zeros(1, 2, 4)] * 5, torch.zeros(1, 4, 4), backend="numba")


def test_triton_backend_rejects_what_it_cannot_run(monkeypatch):
    good = [torch.zeros(1, 2, 4) for _ in range(5)] + [torch.zeros(1, 4, 4)]
    double = [t.double() for t in good]
    with pytest.raises(ValueError, match="inputs of dtype .*; got torch.float64"):
        shm_scan(*double, backend="triton")
    large = [torch.zeros(1, 2, 300) for _ in range(5)] + [torch.zeros(1, 300, 300)]
    with pytest.raises(ValueError, match="H ≤ 256, got H = 300"):
        shm_scan(*large, backend="triton")
    with pytest.raises(ValueError, match="all inputs must share one dtype"):
        shm_scan(*good[:5], good[5].double(), backend="triton")
    monkeypatch.setattr(triton_scan, "interpreted", lambda: False)
    with pytest.raises(ValueError, match="runs on CUDA tensors .*TRITON_INTERPRET=1"):
        shm_scan(*good, backend="triton")


def test_tile_plan_defaults_and_overrides(monkeypatch):
    plan = triton_scan.tile_plan
    assert plan(5) == triton_scan.TilePlan(16, 16, 1, 4)
    assert [(p.block_rows, p.block_cols, p.tiles, p.num_warps) for p in map(plan, (32, 64, 100, 128, 256))] == [
        (32, 32, 1, 4), (32, 64, 2, 8), (16, 128, 7, 8), (16, 128, 8, 8), (8, 256, 32, 8)]
    assert plan(128, block_rows=4, num_warps=8) == triton_scan.TilePlan(4, 128, 32, 8)
    monkeypatch.setenv(triton_scan.BLOCK_ROWS_ENV, "32")
    monkeypatch.setenv(triton_scan.WARPS_ENV, "2")
    assert plan(128) == triton_scan.TilePlan(32, 128, 4, 2)
    monkeypatch.setenv(triton_scan.BLOCK_ROWS_ENV, "12")
    with pytest.raises(ValueError, match=r"\$RLLIB_SHM_TRITON_BLOCK_ROWS must be a power of two, got 12"):
        plan(128)
    with pytest.raises(ValueError, match="block_rows must be at most 16 .* H = 9, got 32"):
        plan(9, block_rows=32)
    monkeypatch.setenv(triton_scan.WARPS_ENV, "four")
    with pytest.raises(ValueError, match=r"\$RLLIB_SHM_TRITON_WARPS must be an integer, got 'four'"):
        plan(128, block_rows=8)
