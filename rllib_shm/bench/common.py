"""Helpers shared by the benchmark harnesses: resident memory and the never-overwrite rule."""

from __future__ import annotations

import os
from pathlib import Path

from rllib_shm.runs.outputs import check_new_file


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def check_new_output(path: Path | None) -> None:
    """Benchmark results are never overwritten: ``--output`` must be a new file in a writable
    directory (the default, ``bench_results/``, is created)."""
    check_new_file(path, "--output")
