"""Helpers shared by the benchmark harnesses: resident memory and the never-overwrite rule."""

from __future__ import annotations

import os
from pathlib import Path


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def check_new_output(path: Path | None) -> None:
    """Benchmark results are never overwritten: refuse an existing ``--output``."""
    if path is not None and path.exists():
        raise ValueError(f"--output {path} exists; choose a new file (results are never overwritten)")
