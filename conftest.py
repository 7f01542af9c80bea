"""Root pytest configuration: one intra-op thread per process (2-core CI machines), set before any
test or doctest imports torch; ``python -m rllib_shm.cli`` is an entry point, not a module to collect."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

collect_ignore_glob = ["rllib_shm/cli/__main__.py"]
