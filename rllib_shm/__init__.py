"""rllib-shm: Stable Hadamard Memory (SHM, ICLR 2025) for RLlib's new API stack.

Layers, each importing only the ones listed before it (``tests/test_layers.py`` checks this):

- ``rllib_shm.memory``: the memory math (torch only).
- ``envs`` (top-level package): the memory environments (gymnasium, numpy, popgym, minigrid).
- ``rllib_shm.rllib``: the RLlib adapter (``MemoryRLModule``, lean state connectors, env registration).
- ``rllib_shm.config``: the experiment config (frozen dataclasses, YAML, ``--set``) and its ``PPOConfig``.
- ``rllib_shm.tracking``, ``rllib_shm.ray_session``: MLflow helpers and Ray start-up shared above;
  ``rllib_shm.files``: files written whole (temporary name, then moved into place), one writer per
  output directory (standard library only, used by every layer that writes results).
- ``rllib_shm.runs``: single runs (the PPO loop, train, checkpoints, evaluation, memory drawings).
- ``rllib_shm.studies`` (Tune + Optuna + MLflow parent/child) and ``rllib_shm.bench`` (harnesses).
- ``rllib_shm.cli``: the ``rllib-shm`` command, on top.
"""

__version__ = "0.1.0"
