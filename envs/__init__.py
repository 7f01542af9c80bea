"""The memory environments of the SHM paper, as gymnasium environments (no Ray, no torch).

Registration is explicit: call :func:`register` (idempotent) before ``gymnasium.make``, or use
:func:`make`, which does it. The RLlib layer registers the same ids with Ray
(``rllib_shm.rllib.register_envs_with_ray``). ``import envs`` imports neither popgym nor
minigrid; their env creators import them on first use.

Id scheme: ``rllib_shm/<Task>[-<Variant>]-v0``.

- ``VisualMatch-L<L>``, ``KeyToDoor-L<L>``: L = distractor-phase length (250 and 500: the
  paper's; 100: the reference code's default; 5: a short variant for tests).
- ``popgym-<Name><Level>``: POPGym's own id inside the namespace (Autoencode, Battleship,
  Concentration, RepeatPrevious, RepeatFirst, CountRecall x Easy/Medium/Hard); the
  ``wrappers`` kwarg picks "popgym" (default), "raw" or "none".
- ``Wind``, ``PointRobot``: meta-RL navigation, 200 tasks; ``split``/``subset`` kwargs pick the
  train or eval tasks of "50_150" / "10_190" (:func:`task_split`).
- ``MiniGrid-Memory<S>``: minigrid's ids inside the namespace, image flattened to float32.
- ``CueRecall-D<d>``: cue recall with d blank steps.

Every kwarg of an env's constructor can be overridden: ``envs.make(id, **kwargs)`` or the RLlib
``env_config``. ``rllib-shm envs`` prints the table with spaces and episode lengths.

Example::

    import envs

    env = envs.make("rllib_shm/VisualMatch-L5-v0")
    observation, info = env.reset(seed=0)  # uint8 [75]: the 5x5 RGB crop around the agent
"""

from envs.episode_bound import episode_bound
from envs.navigation import task_split
from envs.registry import ENV_SPECS, NAMESPACE, EnvSpec, close_matches, get_spec, make, register, spec_table

__all__ = [
    "ENV_SPECS",
    "NAMESPACE",
    "EnvSpec",
    "close_matches",
    "episode_bound",
    "get_spec",
    "make",
    "register",
    "spec_table",
    "task_split",
]
