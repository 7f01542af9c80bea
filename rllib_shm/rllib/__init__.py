"""The RLlib adapter: environment registration with Ray (and, later, the memory RLModule)."""

from rllib_shm.rllib.registration import register_envs_with_ray, resolve_env

__all__ = ["register_envs_with_ray", "resolve_env"]
