"""hadamard_scan and the fused SHM scan against a plain loop: values and gradients."""

import pytest
import torch
from torch.testing import assert_close

from rllib_shm.memory import hadamard_scan, shm_scan


def plain_loop(calibration, update, query, memory0):
    """M_t = M_{t-1} * C_t + U_t; r_t = Σ_j M_t[i, j] q_t[j], written as plainly as possible."""
    memory, reads = memory0, []
    for t in range(calibration.shape[1]):
        memory = memory * calibration[:, t] + update[:, t]
        reads.append((memory * query[:, t, None, :]).sum(-1))
    return torch.stack(reads, 1), memory


def random_inputs(batch, steps, size, dtype, generator, requires_grad=False):
    calibration = 2 * torch.rand(batch, steps, size, size, generator=generator, dtype=dtype)
    update = torch.randn(batch, steps, size, size, generator=generator, dtype=dtype)
    query = torch.randn(batch, steps, size, generator=generator, dtype=dtype)
    memory0 = torch.randn(batch, size, size, generator=generator, dtype=dtype)
    tensors = (calibration, update, query, memory0)
    return tuple(t.requires_grad_(requires_grad) for t in tensors)


def test_hadamard_scan_equals_plain_loop_float64():
    gen = torch.Generator().manual_seed(0)
    inputs = random_inputs(3, 17, 5, torch.float64, gen)
    reads, final = hadamard_scan(*inputs)
    ref_reads, ref_final = plain_loop(*inputs)
    assert_close(reads, ref_reads, rtol=1e-12, atol=1e-12)
    assert_close(final, ref_final, rtol=1e-12, atol=1e-12)


def test_hadamard_scan_gradcheck_float64():
    gen = torch.Generator().manual_seed(1)
    inputs = random_inputs(2, 6, 3, torch.float64, gen, requires_grad=True)
    assert torch.autograd.gradcheck(hadamard_scan, inputs)


def test_hadamard_scan_float32_long_horizon_near_0_and_2():
    """T = 1024 with C entries near 0 (fast forgetting) and near 2 (alternating with ≈1/2 so the
    product stays finite): float32 within 1e-5 relative of the float64 plain loop."""
    gen = torch.Generator().manual_seed(2)
    batch, steps, size = 2, 1024, 8
    near_zero = 1e-3 + 4e-2 * torch.rand(batch, steps, size, size, generator=gen, dtype=torch.float64)
    near_two = 2 - 1e-3 - 4e-2 * torch.rand(batch, steps, size, size, generator=gen, dtype=torch.float64)
    odd = torch.arange(steps).remainder(2).bool()[None, :, None, None]
    growing = torch.where(odd, 1 / near_two, near_two)  # ≈ 2, ≈ 1/2, ≈ 2, ...
    pick = torch.rand(batch, 1, size, size, generator=gen) < 0.5
    calibration = torch.where(pick, near_zero, growing)
    update = torch.randn(batch, steps, size, size, generator=gen, dtype=torch.float64)
    query = torch.randn(batch, steps, size, generator=gen, dtype=torch.float64)
    memory0 = torch.randn(batch, size, size, generator=gen, dtype=torch.float64)
    assert calibration.min() > 0 and calibration.max() < 2
    ref_reads, ref_final = plain_loop(calibration, update, query, memory0)
    inputs32 = [t.float() for t in (calibration, update, query, memory0)]
    reads, final = hadamard_scan(*inputs32)
    rel = (reads.double() - ref_reads).abs().max() / ref_reads.abs().max()
    rel_final = (final.double() - ref_final).abs().max() / ref_final.abs().max()
    assert torch.isfinite(reads).all()
    assert rel < 1e-5 and rel_final < 1e-5, (rel, rel_final)

    # gradients in float32 against float64, same tolerance
    def grads(tensors):
        tensors = [t.detach().requires_grad_() for t in tensors]
        r, f = hadamard_scan(*tensors)
        weights = torch.linspace(-1, 1, steps, dtype=r.dtype)[None, :, None]
        ((r * weights).sum() + f.sum()).backward()
        return [t.grad for t in tensors]

    for g32, g64 in zip(grads(inputs32), grads([calibration, update, query, memory0]), strict=True):
        assert torch.isfinite(g32).all()
        assert ((g32.double() - g64).abs().max() / g64.abs().max()) < 1e-5


def fused_inputs(batch, steps, size, dtype, generator):
    theta, calib, value, key, query = (
        torch.randn(batch, steps, size, generator=generator, dtype=dtype) for _ in range(5)
    )
    memory0 = torch.randn(batch, size, size, generator=generator, dtype=dtype)
    return theta, calib, value, key, query, memory0


def via_hadamard(theta, calib, value, key, query, memory0):
    calibration = 1 + torch.tanh(theta.unsqueeze(-1) * calib.unsqueeze(-2))
    return hadamard_scan(calibration, value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 40, None])
def test_fused_scan_equals_hadamard_scan(chunk_size):
    gen = torch.Generator().manual_seed(3)
    inputs = [t.requires_grad_() for t in fused_inputs(3, 23, 6, torch.float64, gen)]
    reads, final = shm_scan(*inputs, chunk_size=chunk_size)
    ref_reads, ref_final = via_hadamard(*inputs)
    assert_close(reads, ref_reads, rtol=1e-10, atol=1e-10)
    assert_close(final, ref_final, rtol=1e-10, atol=1e-10)
    weights = torch.randn(reads.shape, generator=gen, dtype=reads.dtype)
    grads = torch.autograd.grad((reads * weights).sum() + final.square().sum(), inputs)
    ref_grads = torch.autograd.grad((ref_reads * weights).sum() + ref_final.square().sum(), inputs)
    for name, g, ref in zip(("theta", "calib", "value", "key", "query", "memory0"), grads, ref_grads,
                            strict=True):
        assert_close(g, ref, rtol=1e-10, atol=1e-10, msg=lambda m, n=name: f"grad {n}: {m}")


def test_fused_scan_gradcheck_float64():
    gen = torch.Generator().manual_seed(4)
    inputs = [t.requires_grad_() for t in fused_inputs(2, 9, 3, torch.float64, gen)]
    assert torch.autograd.gradcheck(lambda *a: shm_scan(*a, chunk_size=4), inputs)


def test_fused_scan_float32_long_sequence_matches_float64():
    gen = torch.Generator().manual_seed(5)
    inputs64 = fused_inputs(2, 1024, 8, torch.float64, gen)
    inputs32 = [t.float() for t in inputs64]
    reads64, final64 = shm_scan(*inputs64)
    reads32, final32 = shm_scan(*inputs32)
    assert ((reads32.double() - reads64).abs().max() / reads64.abs().max()) < 1e-5
    assert ((final32.double() - final64).abs().max() / final64.abs().max()) < 1e-5


def test_fused_scan_final_memory_only_gradient():
    """Backward with no gradient flowing into the reads (only M_T used)."""
    gen = torch.Generator().manual_seed(6)
    inputs = [t.requires_grad_() for t in fused_inputs(2, 5, 3, torch.float64, gen)]
    _, final = shm_scan(*inputs, chunk_size=2)
    _, ref_final = via_hadamard(*inputs)
    ref_grads = torch.autograd.grad(ref_final.sum(), inputs, allow_unused=True)
    for g, ref, t in zip(torch.autograd.grad(final.sum(), inputs), ref_grads, inputs, strict=True):
        assert_close(g, torch.zeros_like(t) if ref is None else ref)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calibration": torch.ones(2, 3, 4)}, "calibration must have rank 4"),
        ({"update": torch.ones(2, 3, 4, 5)}, r"update must have shape \[B,T,H,H\]"),
        ({"query": torch.ones(2, 3, 4, dtype=torch.int64)}, "query must be a floating-point"),
        ({"memory0": torch.ones(2, 4, 5)}, "memory0 must be square"),
        ({"query": torch.ones(2, 3, 4, dtype=torch.float64)}, "share one dtype"),
        ({"memory_clamp": -1.0}, "memory_clamp must be a positive finite number"),
    ],
)
def test_hadamard_scan_rejects_bad_input(kwargs, message):
    args = {
        "calibration": torch.ones(2, 3, 4, 4),
        "update": torch.ones(2, 3, 4, 4),
        "query": torch.ones(2, 3, 4),
        "memory0": torch.zeros(2, 4, 4),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        hadamard_scan(**args)


def test_fused_scan_rejects_bad_input():
    good = [torch.ones(2, 3, 4) for _ in range(5)] + [torch.zeros(2, 4, 4)]
    with pytest.raises(ValueError, match=r"key must have shape \[B,T,H\]"):
        shm_scan(*good[:3], torch.ones(2, 3, 5), *good[4:])
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        shm_scan(*good, chunk_size=0)
    other_device = torch.zeros(2, 4, 4, device="meta")  # any second device
    with pytest.raises(ValueError, match=r"all inputs must be on one device, got .*memory0=meta"):
        shm_scan(*good[:5], other_device)
    with pytest.raises(ValueError, match=r"all inputs must be on one device"):
        hadamard_scan(torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4, 4), torch.ones(2, 3, 4), other_device)


def test_fused_scan_float32_state_for_bfloat16_inputs_on_torch_backend():
    """bfloat16 vectors with a float32 M_0: the torch loop computes in float32 (M_T float32, within
    1e-5 of the float64 recurrence of the same rounded inputs) and returns bfloat16 reads."""
    gen = torch.Generator().manual_seed(11)
    *vectors, memory0 = fused_inputs(2, 9, 4, torch.float64, gen)
    low = [t.to(torch.bfloat16) for t in vectors]
    reads, final = shm_scan(*low, memory0.float(), chunk_size=4, backend="torch")
    assert reads.dtype == torch.bfloat16 and final.dtype == torch.float32
    ref_reads, ref_final = via_hadamard(*[t.double() for t in low], memory0)
    assert ((final.double() - ref_final).abs().max() / ref_final.abs().max()) < 1e-5
    assert ((reads.double() - ref_reads).abs().max() / ref_reads.abs().max()) < 2**-7
    with pytest.raises(ValueError, match="all inputs must share one dtype"):
        shm_scan(*[t.float() for t in low], memory0.to(torch.bfloat16))  # a bfloat16 state for float32 inputs
