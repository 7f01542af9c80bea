"""``rllib-shm bench kernel`` at toy sizes: every SHM implementation computes the same output; the
FFM row times the project's FFM cell with M = H."""

import importlib.util
import json

import pytest

from rllib_shm.bench import roofline
from rllib_shm.bench.kernel import CPU_METHODS, CUDA_METHODS
from rllib_shm.bench.kernel_measure import build, measure
from rllib_shm.cli import main


@pytest.mark.slow  # 20 worker processes
def test_bench_kernel_writes_json_and_methods_agree(tmp_path, capsys):
    output = tmp_path / "kernel.json"
    argv = ["bench", "kernel", "--sizes", "4", "6", "--steps", "12", "--batch", "2", "--input-size", "5",
            "--repeats", "1", "--output", str(output)]
    assert main(argv) == 0
    results = json.loads(output.read_text())["results"]
    assert [(r["method"], r["H"]) for r in results] == [(m, h) for h in (4, 6) for m in CPU_METHODS]
    for size in (4, 6):
        rows = {r["method"]: r for r in results if r["H"] == size}
        fused = rows["fused"]["checksum"]
        for method in ("reference", "unbind", "hadamard_scan", "compiled"):
            assert rows[method]["checksum"] == pytest.approx(fused, rel=1e-5)
        assert all(r["median_s"] > 0 and r["runs"] == 1 for m, r in rows.items() if not m.startswith("act_"))
        assert all(rows[m]["median_s"] > 0 for m in ("act_compiled", "act_torch", "act_gru"))
        assert rows["ffm"]["C"] == 8 and rows["ffm"]["flops"] == roofline.ffm_flops(2, 12, 5, size, 8, size)
    table = capsys.readouterr().out
    assert "(c) fused SHM scan (torch)" in table and "(d) fused SHM scan (compiled)" in table
    assert "FFM (M = H)" in table and "FFM C=8" in table
    assert "peak MiB" in table and "µs/step" in table and "compiled kernel: " in table


def test_ffm_row_is_the_projects_ffm_cell_with_trace_size_h():
    """The ffm row runs FFMCell(D, H, trace_size=H, context_size=C) on the same x [B,T,D] as the
    other rows: same output as the cell built directly, trace M×C, and a model rate of its work."""
    import torch

    from rllib_shm.memory import FFMCell

    x, step = build("ffm", 2, 12, 5, 6, torch.device("cpu"), None, ffm_context=3)
    torch.manual_seed(0)  # build() initialises parameters from torch's seed 0
    cell = FFMCell(5, 6, trace_size=6, context_size=3)
    y, state = cell(x)
    torch.testing.assert_close(step(), y)
    assert state["trace"].shape == (2, 6, 3, 2)
    row = measure("ffm", 6, batch=2, steps=12, input_size=5, repeats=2, budget_s=1.0, ffm_context=3)
    assert row["C"] == 3 and row["median_s"] > 0 and row["runs"] >= 1
    assert row["flops"] == roofline.ffm_flops(2, 12, 5, 6, 3, 6)
    assert "ffm" in CPU_METHODS and "ffm" in CUDA_METHODS


def test_ffm_work_model_by_hand():
    # B=1, T=1, D=2, M=3, C=4, O=5: recurrence 8·12; linear 2·(2·2·3 + 2·2·5 + 2·12·5) = 2·152
    assert roofline.ffm_flops(1, 1, 2, 3, 4, 5) == 3 * (8 * 12 + 2 * 152)
    with pytest.raises(ValueError, match="context must be a positive integer, got 0"):
        roofline.ffm_flops(1, 1, 2, 3, 0, 5)


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_bench_kernel_triton_rows_under_the_interpreter(tmp_path, capsys):
    """The Triton method on CPU tensors (TRITON_INTERPRET=1, set by the root conftest and inherited
    by the worker processes) gives the torch loop's output; the table reports it and its model rate."""
    output = tmp_path / "kernel.json"
    argv = ["bench", "kernel", "--sizes", "5", "--steps", "6", "--batch", "2", "--input-size", "3",
            "--repeats", "1", "--methods", "fused", "triton", "--chunk-size", "4", "--output", str(output)]
    assert main(argv) == 0
    rows = {r["method"]: r for r in json.loads(output.read_text())["results"]}
    assert rows["triton"]["checksum"] == pytest.approx(rows["fused"]["checksum"], rel=1e-5)
    assert rows["triton"]["bytes"] > 0 and rows["fused"]["bytes"] is None
    assert rows["triton"]["flops"] == rows["fused"]["flops"] > 0
    table = capsys.readouterr().out
    assert "(e) fused SHM scan (Triton)" in table and "GFLOP/s" in table


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sizes", "0"], "--sizes must be positive integers, got [0]"),
        (["--methods", "fused", "mamba"], "--methods: unknown ['mamba']"),
        (["--steps", "-4"], "--steps must be a positive integer, got -4"),
        (["--device", "tpu"], "--device must be 'cpu' or 'cuda', got 'tpu'"),
        (["--chunk-size", "0"], "--chunk-size must be a positive integer, got 0"),
        (["--budget-s", "0"], "--budget-s must be positive, got 0.0"),
        (["--ffm-context", "0"], "--ffm-context must be a positive integer, got 0"),
        (["--methods", "triton", "--sizes", "300"], "--methods triton supports --sizes up to 256, got 300"),
    ],
)
def test_bench_kernel_rejects_bad_arguments(extra, message, capsys):
    assert main(["bench", "kernel", *extra]) == 2
    assert message in capsys.readouterr().err


def test_bench_kernel_triton_on_cpu_needs_the_interpreter(monkeypatch, capsys):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert main(["bench", "kernel", "--methods", "triton"]) == 2
    assert "--methods triton on --device cpu needs Triton's interpreter" in capsys.readouterr().err


def test_bench_kernel_never_overwrites_results(tmp_path, capsys):
    output = tmp_path / "kernel.json"
    output.write_text("previous results")
    assert main(["bench", "kernel", "--output", str(output)]) == 2
    assert "exists" in capsys.readouterr().err
    assert output.read_text() == "previous results"
