"""Test-session defaults: one intra-op thread per process (2-core CI machines), set before any
test module imports torch."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
