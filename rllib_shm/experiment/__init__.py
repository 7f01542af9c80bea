"""Experiments: configuration, training, searches, tracking, benchmarks and the ``rllib-shm`` CLI."""
