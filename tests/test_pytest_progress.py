"""The test command shows progress under pytest-xdist: a line when each module starts (root
``conftest.py``), on a line of its own, once per module, though xdist itself prints only a dot per
finished test."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def test_each_module_start_is_announced_once_on_its_own_line(tmp_path):
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_long.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    (tmp_path / "test_short.py").write_text("def test_three():\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile",
                           "-o", "addopts=", str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    for module in ("test_long.py", "test_short.py"):
        announced = [line for line in lines if module in line and "started" in line]
        assert len(announced) == 1 and re.fullmatch(rf"\[0:\d\d:\d\d\] started {module}", announced[0]), lines
    assert "3 passed" in done.stdout
