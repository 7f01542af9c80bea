"""The GPU benchmark harness on CPU: work models, spec peaks, the table and targets, and both module
entries running without Ray (as on a GPU machine with torch and Triton only)."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rllib_shm.bench import gpu_table, roofline

REPO = Path(__file__).resolve().parents[1]


def test_scan_ops_and_bytes_by_hand():
    assert roofline.scan_ops(1, 1, 1) == 15 + 41
    assert roofline.scan_ops(2, 3, 4) == 56 * 2 * 3 * 16
    # B=1, T=3, H=2, K=2 (N=2 boundaries), float32: vectors 6, matrices 4
    forward = 6 * 6 * 4 + (2 + 2) * 4 * 4
    backward = 10 * 6 * 4 + 2 * 4 * 4 + 2 * 6 * 2 * 4 + 8 * 6 * 4 + 2 * 4 * 4
    assert roofline.scan_bytes(1, 3, 2, 2) == forward + backward
    assert roofline.scan_bytes(1, 3, 2, 2, element_bytes=2) < forward + backward
    assert roofline.rnn_flops(1, 1, 2, 3, 3) == 3 * 2 * 3 * 3 * (2 + 3)
    assert roofline.fraction(50e12, 2.0, 100e12) == 0.25
    assert roofline.fraction(1.0, 1.0, None) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "H100 SXM5 (datasheet)"),
        ("NVIDIA H100 PCIe", "H100 PCIe (datasheet)"),
        ("NVIDIA H200", "H200 SXM (datasheet)"),
        ("NVIDIA H100 NVL", None),  # figures differ from the SXM part and are not guessed
        ("NVIDIA A100-SXM4-80GB", None),
    ],
)
def test_peak_for_device_names(name, expected):
    peak = roofline.peak_for(name)
    assert (peak.name if peak else None) == expected


def test_models_reject_bad_sizes():
    with pytest.raises(ValueError, match="size must be a positive integer, got 0"):
        roofline.scan_ops(1, 1, 0)
    with pytest.raises(ValueError, match="chunk must be a positive integer, got -1"):
        roofline.scan_bytes(1, 1, 1, -1)
    with pytest.raises(ValueError, match="seconds must be positive, got 0"):
        roofline.fraction(1.0, 0, 1.0)


def row(method, seconds, batch=8, steps=1024, size=128, **extra):
    return {"method": method, "B": batch, "T": steps, "H": size, "median_s": seconds, "peak_mib": 100.0,
            "checksum": 1.0, "flops": 2e12, "bytes": 1e12 if method == "triton" else None, **extra}


def test_table_and_targets_from_rows():
    rows = [row("triton", 0.01), row("fused", 0.5), row("gru", 0.008),
            row("triton", 2.0, batch=64, steps=4096, size=256, peak_mib=3000.0),
            {"method": "fused", "B": 64, "T": 4096, "H": 256, "error": "CUDA out of memory"}]
    peak = roofline.peak_for("NVIDIA H100 80GB HBM3")
    lines = gpu_table.table(rows, peak).splitlines()
    assert lines[0].startswith("| B | T | H | method | fwd+bwd ms | peak MiB")
    triton, fused, gru, big, failed = lines[2:]
    # 2e12 FLOP in 10 ms = 200 TFLOP/s (the model's count over a made-up time) = 298.5 % of 67 TFLOP/s
    assert "| 10.00 | 100 | 2e+05 | 298.5 % | 1e+05 | 2985.1 % | 1.25 | - | yes |" in triton
    assert "| 50x | - |" in fused and "| 1.00 |" in gru
    assert "failed: CUDA out of memory" in failed
    assert gpu_table.targets(rows) == [
        "B=8 T=1024 H=128: Triton / cuDNN GRU(256) time = 1.25 (target ≤ 1.5)",
        "B=8 T=1024 H=128: torch loop / Triton time = 50.0 (target ≥ 20)",
        "B=64 T=4096 H=256: Triton peak 3000 MiB (one [B,T,H,H] fp32 tensor: 65536 MiB)",
    ]
    wrong = gpu_table.table([row("triton", 0.01, checksum=1.1), row("fused", 0.5)], None)
    assert "NO (1e-01)" in wrong and "| - | - |" in wrong  # no peak known: no fractions


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batches", "0"], "--batches must be positive integers, got [0]"),
        (["--methods", "mamba"], "--methods: unknown ['mamba']"),
        (["--device", "tpu"], "--device must be 'cpu' or 'cuda', got 'tpu'"),
        (["--budget-s", "-1"], "--budget-s must be positive, got -1.0"),
    ],
)
def test_gpu_table_rejects_bad_arguments(argv, message, capsys):
    assert gpu_table.main(argv) == 2
    assert message in capsys.readouterr().err


BLOCKER = """
import sys

class RefuseImports:  # a GPU machine: torch (and Triton) only
    blocked = {"ray", "gymnasium", "mlflow", "optuna", "yaml", "matplotlib", "popgym", "minigrid", "onnx",
               "onnxruntime", "pandas"}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ImportError(f"{name} is not installed here")
        return None

sys.meta_path.insert(0, RefuseImports())
"""


@pytest.mark.slow  # 4 Python processes
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")
def test_module_entries_run_without_ray(tmp_path):
    """``python -m rllib_shm.bench.kernel`` (and its worker processes) and
    ``python -m rllib_shm.bench.gpu_table`` with ray, gymnasium, mlflow, optuna, yaml, ... refused
    at import (a ``sitecustomize`` on PYTHONPATH reaches the workers too)."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCKER))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), "TRITON_INTERPRET": "1"}
    probe = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True, text=True)
    assert "ray is not installed here" in probe.stderr  # the blocker is active
    tiny = ["--steps", "4", "--input-size", "2", "--repeats", "1", "--sizes", "3"]
    kernel = subprocess.run(
        [sys.executable, "-m", "rllib_shm.bench.kernel", *tiny, "--batch", "1", "--methods", "fused",
         "--output", str(tmp_path / "kernel.json")], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert kernel.returncode == 0, kernel.stderr[-2000:]
    assert [r["method"] for r in json.loads((tmp_path / "kernel.json").read_text())["results"]] == ["fused"]
    table = subprocess.run(
        [sys.executable, "-m", "rllib_shm.bench.gpu_table", "--device", "cpu", *tiny, "--batches", "1",
         "--methods", "triton", "fused", "--output", str(tmp_path / "gpu.json")],
        env=env, capture_output=True, text=True, cwd=tmp_path)
    assert table.returncode == 0, table.stderr[-2000:]
    assert "| 1 | 4 | 3 | (e) fused SHM scan (Triton) |" in table.stdout and "| yes |" in table.stdout
