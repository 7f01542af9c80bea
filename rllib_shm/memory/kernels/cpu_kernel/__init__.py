"""The compiled CPU scan: C++ source (``shm_scan.cpp``), its build cache and its torch wrappers.

``compiled_scan`` runs the fused SHM recurrence (forward + backward, chunk-boundary states only) in
one native call per direction; ``available()`` says whether the kernel could be compiled and
loaded here (the first call compiles it, see ``build``). ``rllib_shm.memory.kernels.fused`` chooses between
it and the pure-torch scan.
"""

from .build import cache_dir
from .scan import act, available, compiled_scan, kernel_build

__all__ = ["act", "available", "cache_dir", "compiled_scan", "kernel_build"]
