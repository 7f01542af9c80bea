"""The RLlib adapter: environment registration with Ray (and, later, the memory RLModule)."""

from rllib_shm.rllib.registration import make_env, register_envs_with_ray, resolve_env

__all__ = ["make_env", "register_envs_with_ray", "resolve_env"]
