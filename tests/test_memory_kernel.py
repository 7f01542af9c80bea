"""The compiled CPU scan against the general ``hadamard_scan``: values and every gradient, both backends.

float64 within 1e-9 relative, float32 within 1e-4 of the float64 reference; T up to 4096; chunk
sizes that divide T and that do not; C near 0 and near 2; carried state; clamps; calibration
tables; acting without autograd; the fallback when the kernel cannot be built.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.testing import assert_close

from rllib_shm.memory import SHMCell, hadamard_scan, shm_scan
from rllib_shm.memory.kernels.fused import select_backend, table_scan

BACKENDS = ("compiled", "torch")
NAMES = ("theta", "calib", "value", "key", "query", "memory0")


def vector_inputs(batch, steps, size, generator, extreme=False):
    """θ, c, v, k, q [B,T,H] and M_0 [B,H,H] in float64; ``extreme``: |θ c| up to 12, so that C_t
    takes values within 1e-10 of 0 and of 2 (the state stays finite: any ≈0 resets the product)."""
    theta, calib, value, key, query = (torch.randn(batch, steps, size, generator=generator, dtype=torch.float64)
                                       for _ in range(5))
    if extreme:
        theta = 4 * torch.sign(theta)
        calib = torch.sign(calib) * (1.5 + 1.5 * torch.rand(calib.shape, generator=generator, dtype=torch.float64))
    memory0 = torch.randn(batch, size, size, generator=generator, dtype=torch.float64)
    return [theta, calib, value, key, query, memory0]


def reference(theta, calib, value, key, query, memory0, memory_clamp=None):
    calibration = 1 + torch.tanh(theta.unsqueeze(-1) * calib.unsqueeze(-2))
    return hadamard_scan(calibration, value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0, memory_clamp)


def values_and_grads(function, inputs, weights):
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    reads, final = function(*inputs)
    loss = (reads * weights).sum() + (final * final.detach().sign()).sum()
    return [reads, final, *torch.autograd.grad(loss, inputs)]


def relative_error(actual, expected):
    actual, expected = actual.detach().double(), expected.detach()
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-300))


def check_all(actual, expected, tolerance, loose=()):
    """Every value within ``tolerance`` relative (to its largest entry); names in ``loose`` within 1e-2."""
    for name, a, e in zip(("reads", "final", *(f"grad {n}" for n in NAMES)), actual, expected, strict=True):
        assert torch.isfinite(a).all(), name
        error = relative_error(a.detach(), e)
        assert error < (1e-2 if name in loose else tolerance), (name, error)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("steps", "chunk"), [(1, None), (23, 1), (23, 5), (23, 23), (23, 40), (300, 16), (300, None)])
def test_scan_float64_equals_reference(backend, steps, chunk):
    gen = torch.Generator().manual_seed(steps * 100 + (chunk or 0))
    inputs = vector_inputs(3, steps, 5, gen)
    weights = torch.randn(3, steps, 5, generator=gen, dtype=torch.float64)
    actual = values_and_grads(lambda *a: shm_scan(*a, chunk_size=chunk, backend=backend), inputs, weights)
    check_all(actual, values_and_grads(reference, inputs, weights), 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("extreme", [False, True], ids=["moderate", "C-near-0-and-2"])
def test_scan_long_horizon_float64_and_float32(backend, extreme):
    """T = 4096 (chunk 60 does not divide it): float64 to 1e-9, float32 to 1e-4 of float64.

    Near saturation the float32 gradients of θ and c need 1 − tanh²(Z) = C (2 − C) with 2 − C
    computed as C·exp(−2Z): the compiled kernel does so; the torch backend (like torch's own
    autograd of 1 + tanh in float32, 5e-3 here) cancels in 2 − C and is only held to 1e-2 there.
    """
    gen = torch.Generator().manual_seed(11 + extreme)
    steps = 4096
    inputs = vector_inputs(1, steps, 4, gen, extreme=extreme)
    inputs[0] = inputs[0] * (1 if extreme else 0.3)  # moderate: C within about (0.6, 1.4)
    weights = torch.randn(1, steps, 4, generator=gen, dtype=torch.float64)
    expected = values_and_grads(reference, inputs, weights)
    if extreme:
        calibration = 1 + torch.tanh(inputs[0].unsqueeze(-1) * inputs[1].unsqueeze(-2))
        assert calibration.min() < 1e-9 and calibration.max() > 2 - 1e-9
    run = lambda *a: shm_scan(*a, chunk_size=60, backend=backend)  # noqa: E731
    check_all(values_and_grads(run, inputs, weights), expected, 1e-9)
    loose = ("grad theta", "grad calib") if extreme and backend == "torch" else ()
    check_all(values_and_grads(run, [t.float() for t in inputs], weights.float()), expected, 1e-4, loose)


@pytest.mark.parametrize("backend", BACKENDS)
def test_carried_state_equals_one_long_scan(backend):
    """Two calls with M carried (and the gradient through it) equal one call over the whole sequence."""
    gen = torch.Generator().manual_seed(12)
    inputs = vector_inputs(2, 50, 6, gen)
    weights = torch.randn(2, 50, 6, generator=gen, dtype=torch.float64)

    def in_two(theta, calib, value, key, query, memory0):
        first, middle = shm_scan(*(t[:, :17] for t in (theta, calib, value, key, query)), memory0, backend=backend)
        second, final = shm_scan(*(t[:, 17:] for t in (theta, calib, value, key, query)), middle, backend=backend)
        return torch.cat([first, second], 1), final

    check_all(values_and_grads(in_two, inputs, weights), values_and_grads(reference, inputs, weights), 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clamped_scan_equals_reference(backend):
    """M_t ← clamp(M_t, −c, c): value and gradients (the clamp's mask recomputed) in float64."""
    gen = torch.Generator().manual_seed(13)
    inputs = vector_inputs(2, 40, 5, gen)
    inputs[2] = 3 * inputs[2]  # large updates: many entries hit the clamp
    weights = torch.randn(2, 40, 5, generator=gen, dtype=torch.float64)
    expected = values_and_grads(lambda *a: reference(*a, memory_clamp=2.0), inputs, weights)
    clamped = (expected[1].abs() == 2.0).float().mean()
    assert 0.05 < clamped < 0.95, clamped
    actual = values_and_grads(lambda *a: shm_scan(*a, chunk_size=7, memory_clamp=2.0, backend=backend),
                              inputs, weights)
    check_all(actual, expected, 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rows", [1, 6])
def test_table_scan_equals_reference(backend, rows):
    """C_t = table[l_t] (fixed matrix: L = 1; random matrices: L = 6), with and without a clamp."""
    gen = torch.Generator().manual_seed(14 + rows)
    batch, steps, size = 2, 33, 5
    table = (2 * torch.rand(rows, size, size, generator=gen, dtype=torch.float64)).requires_grad_()
    indices = torch.randint(0, rows, (batch, steps), generator=gen)
    *_, value, key, query, memory0 = vector_inputs(batch, steps, size, gen)
    weights = torch.randn(batch, steps, size, generator=gen, dtype=torch.float64)
    for clamp in (None, 1.5):
        def run(table, value, key, query, memory0, scan):
            return scan(table, value, key, query, memory0)

        def compiled(table, value, key, query, memory0, clamp=clamp):
            return table_scan(table, indices, value, key, query, memory0, 8, memory_clamp=clamp, backend=backend)

        def expected(table, value, key, query, memory0, clamp=clamp):
            return hadamard_scan(table[indices], value.unsqueeze(-1) * key.unsqueeze(-2), query, memory0, clamp)

        inputs = [table, value, key, query, memory0]
        for a, e in zip(values_and_grads(compiled, inputs, weights), values_and_grads(expected, inputs, weights),
                        strict=True):
            assert_close(a, e, rtol=1e-9, atol=1e-9)


def cells(calibration, **kwargs):
    torch.manual_seed(0)  # parameter initialisation only
    cell = SHMCell(6, 5, 4, num_thetas=8, calibration=calibration, **kwargs).double()
    return cell


@pytest.mark.parametrize("calibration", ["shm", "none", "neural_theta", "fixed_matrix", "random_matrix"])
@pytest.mark.parametrize("clamp", [None, 0.3])
def test_cell_backends_and_acting_agree(calibration, clamp, monkeypatch):
    """One cell, one θ draw: compiled with autograd, compiled acting (no autograd, one step at a time,
    state carried) and the torch backend give the same y and state; the gradients agree too."""
    cell = cells(calibration, memory_clamp=clamp)
    x = torch.randn(3, 12, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, _, extras = cell(x, return_extras=True)
    results = {}
    for backend in BACKENDS:
        monkeypatch.setenv("RLLIB_SHM_SCAN", backend)
        cell.zero_grad()
        y, state = cell(x, **extras)
        (y.square().sum() + state["memory"].square().sum()).backward()
        results[backend] = (y.detach(), state["memory"].detach(), [p.grad.clone() for p in cell.parameters()
                                                                    if p.grad is not None])
        with torch.no_grad():  # acting: one step at a time, θ rows replayed
            carried, ys = None, []
            for t in range(x.shape[1]):
                y_t, carried = cell(x[:, t : t + 1], carried, **{k: v[:, t : t + 1] for k, v in extras.items()})
                ys.append(y_t)
        assert_close(torch.cat(ys, 1), y.detach(), rtol=1e-10, atol=1e-10)
        assert_close(carried["memory"], state["memory"].detach(), rtol=1e-10, atol=1e-10)
    (y_c, m_c, g_c), (y_t, m_t, g_t) = results["compiled"], results["torch"]
    assert_close(y_c, y_t, rtol=1e-10, atol=1e-10)
    assert_close(m_c, m_t, rtol=1e-10, atol=1e-10)
    assert len(g_c) == len(g_t) > 0
    for a, b in zip(g_c, g_t, strict=True):
        assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_acting_sees_weight_updates():
    """The cached stacked projection is rebuilt after an optimiser step changes the weights."""
    cell = cells("shm").float()
    x = torch.randn(2, 1, 6, generator=torch.Generator().manual_seed(2))
    indices = torch.zeros(2, 1, dtype=torch.long)
    with torch.no_grad():
        before, _ = cell(x, theta_indices=indices)
        cell.query.weight.mul_(-1.0)
        after, _ = cell(x, theta_indices=indices)
    with torch.enable_grad():
        expected, _ = cell(x, theta_indices=indices)
    assert (after - before).abs().max() > 1e-4
    assert_close(after, expected.detach(), rtol=1e-5, atol=1e-6)


def test_select_backend_and_errors(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.delenv("RLLIB_SHM_SCAN", raising=False)
    assert select_backend(cpu, torch.float32) == "compiled"  # this machine has a C++ compiler
    assert select_backend(cpu, torch.float16) == "torch"
    assert select_backend(torch.device("meta"), torch.float32) == "torch"
    monkeypatch.setenv("RLLIB_SHM_SCAN", "torch")
    assert select_backend(cpu, torch.float32) == "torch"
    assert select_backend(cpu, torch.float32, "compiled") == "compiled"  # the argument wins
    with pytest.raises(ValueError, match="compiled scan runs on CPU float32/float64 tensors"):
        select_backend(cpu, torch.float16, "compiled")
    monkeypatch.setenv("RLLIB_SHM_SCAN", "triton-on-cpu")
    with pytest.raises(ValueError, match=r"\$RLLIB_SHM_SCAN must be one of 'auto', 'torch', 'compiled', 'triton'"):
        select_backend(cpu, torch.float32)


def test_table_scan_rejects_bad_indices():
    table, value = torch.ones(3, 4, 4), torch.ones(2, 5, 4)
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 2\], got values in \[0, 3\]"):
        table_scan(table, torch.tensor([[0, 1, 2, 3, 0]] * 2), value, value, value, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="indices must be an int64 tensor"):
        table_scan(table, torch.zeros(2, 5, dtype=torch.int32), value, value, value, torch.zeros(2, 4, 4))


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_without_a_compiler_falls_back_with_one_warning(tmp_path):
    """No C++ compiler: ``auto`` warns once and runs the torch scan; ``compiled`` raises."""
    done = run_python("""
        import warnings, torch
        from rllib_shm.memory import shm_scan
        from rllib_shm.memory.kernels.fused import select_backend
        x = [torch.randn(1, 3, 2) for _ in range(5)] + [torch.zeros(1, 2, 2)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shm_scan(*x); shm_scan(*x)
        print([str(w.message) for w in caught])
        assert len(caught) == 1 and "compiled CPU scan unavailable" in str(caught[0].message), caught
        assert select_backend(torch.device("cpu"), torch.float32) == "torch"
        try:
            shm_scan(*x, backend="compiled")
        except RuntimeError as error:
            print("raised:", error)
        else:
            raise AssertionError("no error")
    """, CXX=str(tmp_path / "no-such-compiler"), RLLIB_SHM_KERNEL_CACHE=str(tmp_path / "cache"),
        RLLIB_SHM_SCAN="auto")
    assert done.returncode == 0, done.stderr
    assert "raised: the compiled CPU scan is unavailable" in done.stdout


@pytest.mark.slow  # two compiles' worth of waiting (a few seconds each on a busy 2-core machine)
def test_concurrent_first_use_compiles_once(tmp_path):
    """Four processes start at once on an empty cache: all load the kernel, one library is built."""
    code = """
        from rllib_shm.memory.kernels.cpu_kernel import kernel_build
        result = kernel_build()
        assert result.library is not None, result.error
        print(result.compile_s > 0)
    """
    env = {**os.environ, "RLLIB_SHM_KERNEL_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    assert sorted(out.strip() for out, _ in outputs) == ["False", "False", "False", "True"]
    assert len(list(tmp_path.glob("*.so"))) == 1 and not list(tmp_path.glob("*.tmp.so"))


def test_threads_split_the_batch_and_agree():
    """With several torch threads (and enough work) the compiled scan splits the batch over threads;
    results equal one thread's (vector: exactly; table: the per-thread table gradients summed)."""
    gen = torch.Generator().manual_seed(15)
    batch, steps, size = 4, 256, 64  # B·T·H² = 2^22: the threshold for threads
    inputs = [t.float() for t in vector_inputs(batch, steps, size, gen)]
    inputs[0] = 0.3 * inputs[0]
    table = 0.5 + 0.5 * torch.rand(3, size, size, generator=gen)  # C in (0.5, 1): M stays finite
    indices = torch.randint(0, 3, (batch, steps), generator=gen)
    weights = torch.randn(batch, steps, size, generator=gen)

    def both():
        vector = values_and_grads(lambda *a: shm_scan(*a, backend="compiled"), inputs, weights)
        tabled = values_and_grads(lambda table, *a: table_scan(table, indices, *a, backend="compiled"),
                                  [table, *inputs[2:]], weights)
        return vector, tabled

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = both()
        torch.set_num_threads(2)
        two = both()
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(one[0], two[0], strict=True):
        assert torch.equal(a, b)
    for a, b in zip(one[1], two[1], strict=True):  # float32 sums over B·T terms in another order
        assert torch.isfinite(a).all() and relative_error(b, a.double()) < 1e-5
