"""Helpers shared by the benchmark harnesses."""

from __future__ import annotations

import os


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")



def worker_failure(what: str, returncode: int, stderr: str) -> Exception:
    """The error for a benchmark worker process that exited with ``returncode``: its reason on the first
    line (the worker's own ``error:`` line, else the last line it wrote to stderr, e.g. a traceback's
    exception), the end of its stderr below. ValueError when the worker refused its input (exit 2)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    reason = errors[-1].split(": error: ", 1)[1] if errors else lines[-1] if lines else f"exit code {returncode}"
    kind = ValueError if returncode == 2 else RuntimeError
    return kind(f"benchmark worker {what} failed: {reason}\n{stderr[-2000:]}")
