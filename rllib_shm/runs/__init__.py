"""Single runs: the PPO iteration loop, ``train``, checkpoints, evaluation episodes and the drawings
of what a memory did."""
