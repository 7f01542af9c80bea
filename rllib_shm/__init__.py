"""rllib-shm: Stable Hadamard Memory (SHM, ICLR 2025) for RLlib's new API stack.

Layers (imports point downward only):

- ``rllib_shm.memory``: the memory math (torch only).
- ``envs`` (top-level package): the memory environments (gymnasium, numpy, popgym, minigrid).
- ``rllib_shm.rllib``: the RLlib adapter (RLModule, env registration with Ray).
- ``rllib_shm.experiment``: configs, training, searches, tracking, benchmarks and the CLI.
"""

__version__ = "0.1.0"
