"""Run ``rllib-shm`` with a pause inside one function, so a test can send a signal or start a second
writer at exactly that moment (real processes, no mocks of the code under test):

    python tests/pause_at.py MODULE:QUALNAME SUFFIX MARKER SECONDS -- ARGS...

The first call of ``MODULE.QUALNAME`` (a function, or ``Class.method``) whose first argument (after
``self``) ends with ``SUFFIX`` (``-``: any call) creates the file ``MARKER`` and waits, at most
``SECONDS``, for the file ``MARKER.go`` before it runs; then ``rllib-shm ARGS...`` exits with the
CLI's exit code.
"""

from __future__ import annotations

import functools
import importlib
import sys
import time
from pathlib import Path


def pause(target: str, suffix: str, marker: Path, seconds: float) -> None:
    module_name, qualname = target.split(":")
    owner = importlib.import_module(module_name)
    *parents, name = qualname.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    original = getattr(owner, name)
    method = bool(parents)
    done = []

    @functools.wraps(original)
    def paused(*args, **kwargs):
        first = args[1] if method and len(args) > 1 else args[0] if args and not method else None
        if not done and (suffix == "-" or str(first).endswith(suffix)):
            done.append(True)
            marker.touch()
            go, deadline = Path(f"{marker}.go"), time.monotonic() + seconds
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return original(*args, **kwargs)

    setattr(owner, name, paused)


if __name__ == "__main__":
    target, suffix, marker, seconds, dashes, *argv = sys.argv[1:]
    assert dashes == "--", sys.argv
    pause(target, suffix, Path(marker), float(seconds))
    from rllib_shm.cli.main import main

    sys.exit(main(argv))
