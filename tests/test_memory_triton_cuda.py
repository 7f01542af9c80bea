"""The compiled Triton SHM scan on a GPU: values and gradients against the float64 recurrence.

Skipped without a CUDA device (so in CI). On a GPU machine, from the source tree and with
Triton's compiler rather than its interpreter (the root conftest turns the interpreter on unless
told otherwise):

    TRITON_INTERPRET=0 PYTHONPATH=. python -m pytest -p no:cacheprovider tests/test_memory_triton_cuda.py
"""

import pytest
import torch

from rllib_shm.memory import hadamard_scan, shm_scan

pytest.importorskip("triton")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)
from rllib_shm.memory.kernels import triton_scan  # noqa: E402  (after the skips: needs triton)

if triton_scan.interpreted():
    pytest.skip("Triton's interpreter is on: run with TRITON_INTERPRET=0", allow_module_level=True)


def reference(theta, calib, value, key, query, memory0):
    calibration = 1 + torch.tanh(theta.unsqueeze(-1) * calib.unsqueeze(-2))
    return hadamard_scan(calibration, value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("size", "block_rows"), [(5, None), (64, None), (130, None), (256, None), (128, 4)])
def test_compiled_scan_matches_float64_recurrence(size, block_rows, dtype):
    gen = torch.Generator().manual_seed(size)
    batch, steps = 3, 37
    inputs = [torch.randn(batch, steps, size, generator=gen, dtype=torch.float64) for _ in range(5)]
    inputs[:2] = [0.5 * t for t in inputs[:2]]  # C spread over (0, 2)
    memory0 = torch.randn(batch, size, size, generator=gen, dtype=torch.float64)
    low = [t.to(dtype) for t in inputs]
    weights = torch.randn(batch, steps, size, generator=gen, dtype=torch.float64)
    cuda = [t.cuda().requires_grad_() for t in low] + [memory0.float().cuda().requires_grad_()]
    reads, final = triton_scan.triton_shm_scan(*cuda, 8, block_rows=block_rows)
    torch.autograd.backward([reads, final], [weights.to(dtype).cuda(), 2 * final.detach()])
    exact = [t.double().requires_grad_() for t in low] + [memory0.requires_grad_()]
    ref_reads, ref_final = reference(*exact)
    ((ref_reads * weights.to(dtype).double()).sum() + ref_final.square().sum()).backward()
    tolerance = 1e-4 if dtype == torch.float32 else 2**-7
    got = [reads, final, *(t.grad for t in cuda)]
    want = [ref_reads, ref_final, *(t.grad for t in exact)]
    for name, a, b in zip(("reads", "final", "θ", "c", "v", "k", "q", "M_0"), got, want, strict=True):
        error = (a.detach().double().cpu() - b.detach()).abs().max() / b.detach().abs().max()
        limit = 1e-4 if name in ("final", "M_0") else tolerance  # the state is float32 in both cases
        assert error <= limit, f"{name}: {float(error):.2e}"


def test_auto_backend_on_cuda_is_triton_and_matches_torch_loop():
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(2, 50, 32, generator=gen).cuda() for _ in range(5)]
    memory0 = torch.randn(2, 32, 32, generator=gen).cuda()
    fast = shm_scan(*inputs, memory0)  # auto: Triton on CUDA
    slow = shm_scan(*inputs, memory0, backend="torch")
    for a, b in zip(fast, slow, strict=True):
        assert (a - b).abs().max() <= 1e-4 * b.abs().max()


def test_long_sequence_memory_stays_below_one_full_tensor():
    """B=8, T=4096, H=128: peak memory far below one [B,T,H,H] fp32 tensor (2 GiB)."""
    batch, steps, size = 8, 4096, 128
    inputs = [torch.randn(batch, steps, size, device="cuda", requires_grad=True) for _ in range(5)]
    memory0 = torch.zeros(batch, size, size, device="cuda", requires_grad=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    reads, final = shm_scan(*[0.3 * t for t in inputs], memory0)
    (reads.square().mean() + final.mean()).backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    assert torch.isfinite(inputs[0].grad).all()
    assert peak < batch * steps * size * size * 4 / 8, f"peak {peak / 2**20:.0f} MiB"
