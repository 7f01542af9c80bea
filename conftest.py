"""Root pytest configuration, read before any test or doctest imports torch or triton:

- one intra-op thread per process (2-core CI machines);
- Triton's interpreter (``TRITON_INTERPRET=1``, unless the environment sets it): the Triton
  kernels then run on CPU tensors, which is how the suite checks them without a GPU. Triton fixes
  the mode when it is first imported; ``TRITON_INTERPRET=0 pytest tests/test_memory_triton_cuda.py``
  checks the compiled kernels on a GPU machine;
- ``python -m rllib_shm.cli`` is an entry point, not a module to collect; the Triton kernel
  modules are not collected (imported) where Triton is not installed;
- progress under pytest-xdist: xdist prints one dot per *finished* test and no file names, and the
  suite starts with its slowest modules (studies, clusters), so nothing would show for minutes.
  The controller prints a line when a module's first test starts (time since the session began,
  the module), so a long test reads as running, not hung.
"""

import importlib.util
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRITON_INTERPRET", "1")

collect_ignore_glob = ["rllib_shm/cli/__main__.py"]
if importlib.util.find_spec("triton") is None:
    collect_ignore_glob += ["rllib_shm/memory/kernels/triton_*.py", "tests/triton_compile_check.py"]


_progress = {"config": None, "began": time.monotonic(), "modules": set()}


def pytest_configure(config):
    _progress["config"] = config
    _progress["began"] = time.monotonic()


def pytest_runtest_logstart(nodeid, location):
    """In the xdist controller (workers forward the hook): ``[0:03:12] started tests/test_x.py``
    when the first test of a module starts. Single-process runs print file names already."""
    config = _progress["config"]
    if config is None or hasattr(config, "workerinput") or not config.pluginmanager.has_plugin("dsession"):
        return
    module = nodeid.split("::", 1)[0]
    if module in _progress["modules"]:
        return
    _progress["modules"].add(module)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        elapsed = int(time.monotonic() - _progress["began"])
        writer = getattr(reporter, "_tw", None)  # after a row of dots, start a new line
        if writer is not None and writer.width_of_current_line:
            reporter.write("\n")
        reporter.write_line(f"[{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] started {module}")
