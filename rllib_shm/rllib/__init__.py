"""The RLlib adapter: the recurrent ``MemoryRLModule`` (``module.py``) and its ``ModuleConfig``,
the lean recurrent-state connectors (``connectors.py``, ``MemoryPPOConfig``), the training
success rate (``success.py``, an RLlib callback) and environment registration with Ray
(``registration.py``). Imports the memory math and the envs, never Tune's
search machinery, Optuna or MLflow."""

from envs import episode_bound
from rllib_shm.rllib.registration import env_kwargs, make_env, register_envs_with_ray, resolve_env

__all__ = ["env_kwargs", "episode_bound", "make_env", "register_envs_with_ray", "resolve_env"]
