"""The Triton kernels compile for an H100 (sm_90) without a GPU, with the default tiles and no
register spills: what Triton's interpreter (the other Triton tests) cannot check."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # compiles 5 kernels (~10 s)
def test_kernels_compile_for_sm90_without_spills():
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(REPO / "tests" / "triton_compile_check.py")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["kernel"], r["H"]) for r in reports] == [
        ("forward", 256), ("backward", 256), ("forward", 128), ("backward", 128), ("backward", 32)]
    for report in reports:
        assert report["stack"] == 0 and report["local"] == 0, f"register spills: {report}"
        assert report["reg"] <= 255, report
