"""Single runs: the PPO iteration loop, ``train``, checkpoints, pre-flight checks and evaluation
episodes (the drawings of what a memory did live in ``rllib_shm.drawing``)."""
