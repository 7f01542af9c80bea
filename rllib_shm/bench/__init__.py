"""Performance harnesses behind ``rllib-shm bench``: ``kernel`` (the memory recurrence) and ``ppo``
(PPO throughput and state memory)."""
