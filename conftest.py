"""Root pytest configuration, read before any test or doctest imports torch or triton:

- one intra-op thread per process (2-core CI machines);
- Triton's interpreter (``TRITON_INTERPRET=1``, unless the environment sets it): the Triton
  kernels then run on CPU tensors, which is how the suite checks them without a GPU. Triton fixes
  the mode when it is first imported; ``TRITON_INTERPRET=0 pytest tests/test_memory_triton_cuda.py``
  checks the compiled kernels on a GPU machine;
- ``python -m rllib_shm.cli`` is an entry point, not a module to collect; the Triton kernel
  modules are not collected (imported) where Triton is not installed.
"""

import importlib.util
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TRITON_INTERPRET", "1")

collect_ignore_glob = ["rllib_shm/cli/__main__.py"]
if importlib.util.find_spec("triton") is None:
    collect_ignore_glob += ["rllib_shm/memory/kernels/triton_*.py", "tests/triton_compile_check.py"]
