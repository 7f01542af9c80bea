"""The table of the project's environments, and their registration with gymnasium.

:data:`ENV_SPECS` is the single source: :func:`register` (gymnasium), the RLlib layer's
``register_envs_with_ray`` (Ray Tune's registry) and ``rllib-shm envs`` all read it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

NAMESPACE = "rllib_shm"

TVT_ORIGIN = "DeepMind TVT (pycolab), numpy port"
POPGYM_ORIGIN = "popgym 1.0.7"
META_ORIGIN = "pomdp-baselines, SHM settings"
MINIGRID_ORIGIN = "minigrid"
OWN_ORIGIN = "rllib-shm"


@dataclass(frozen=True)
class EnvSpec:
    """One registered environment."""

    id: str  # namespaced gymnasium id, e.g. "rllib_shm/VisualMatch-L250-v0"
    entry_point: str  # "module:attr", a gymnasium.Env class or a function returning an env
    kwargs: Mapping[str, Any] = field(default_factory=dict)  # constructor keyword arguments
    description: str = ""  # one line for ``rllib-shm envs``
    origin: str = ""  # where the task comes from
    episode_length: int = 0  # steps per episode: exact, or the maximum when not fixed_length
    fixed_length: bool = True  # every episode lasts exactly episode_length steps
    # the memory-length benchmark's x axis (docs/memory-length.md): the most steps between an observation
    # and the step that needs it (None: not one number, e.g. Autoencode, Battleship); family groups the
    # ids that differ only in that length (CueRecall, RepeatFirst, RepeatPrevious)
    memory_length: int | None = None
    family: str = ""

    @property
    def length_text(self) -> str:
        return str(self.episode_length) if self.fixed_length else f"<={self.episode_length}"


def _tvt_specs() -> list[EnvSpec]:
    specs = []
    for game, module, lengths, what in (
        ("VisualMatch", "visual_match", (15, 10), "remember a colour, pick it after L distractor steps"),
        ("KeyToDoor", "key_to_door", (10, 3), "pick up a key, open a door with it after L distractor steps"),
    ):
        # the paper's L, the reference default, Memory-RL's shortest (the scaled SAC studies), tests
        for distractor in (250, 500, 100, 60, 5):
            specs.append(
                EnvSpec(
                    id=f"{NAMESPACE}/{game}-L{distractor}-v0",
                    entry_point=f"envs.{module}:{game}",
                    kwargs={"distractor_length": distractor},
                    description=f"{game}: {what} (L = {distractor})",
                    origin=TVT_ORIGIN,
                    episode_length=lengths[0] + distractor + lengths[1],
                )
            )
    return specs


# POPGym: name, episode length at Easy / Medium / Hard, fixed length?, description
# memory length per level: RepeatPrevious recalls the card k = 4 / 32 / 64 steps back; RepeatFirst the
# first card, up to episode length − 1 steps back
_MEMORY_LENGTHS = {"RepeatPrevious": (4, 32, 64), "RepeatFirst": (50, 414, 830)}
_POPGYM = (
    ("Autoencode", (103, 207, 311), True, "repeat a card sequence in reverse"),
    ("Battleship", (64, 100, 144), False, "sink hidden ships, one shot per step"),
    ("Concentration", (104, 208, 104), False, "find matching pairs of face-down cards"),
    ("RepeatPrevious", (51, 103, 155), True, "output the suit seen k steps ago"),
    ("RepeatFirst", (51, 415, 831), True, "output the suit of the first card"),
    ("CountRecall", (51, 103, 207), True, "count how often a card was dealt"),
)


def _popgym_specs() -> list[EnvSpec]:
    specs = []
    for name, lengths, fixed, what in _POPGYM:
        for index, (level, length) in enumerate(zip(("Easy", "Medium", "Hard"), lengths, strict=True)):
            memory = _MEMORY_LENGTHS.get(name)
            specs.append(
                EnvSpec(
                    id=f"{NAMESPACE}/popgym-{name}{level}-v0",
                    entry_point="envs.popgym_tasks:make_popgym",
                    kwargs={"task": f"{name}{level}"},
                    description=f"POPGym {name} {level}: {what}",
                    origin=POPGYM_ORIGIN,
                    episode_length=length,
                    fixed_length=fixed,
                    memory_length=memory[index] if memory else None,
                    family=name if memory else "",
                )
            )
    return specs


def _other_specs() -> list[EnvSpec]:
    specs = [
        EnvSpec(
            id=f"{NAMESPACE}/Wind-v0",
            entry_point="envs.wind:Wind",
            description="Wind: reach (0, 1) under a hidden per-task drift (200 tasks)",
            origin=META_ORIGIN,
            episode_length=100,
        ),
        EnvSpec(
            id=f"{NAMESPACE}/PointRobot-v0",
            entry_point="envs.point_robot:PointRobot",
            description="Point Robot (sparse): find a goal on a half-circle, 2 episodes per task",
            origin=META_ORIGIN,
            episode_length=200,
        ),
    ]
    for task, size in (("S7", 7), ("S9", 9), ("S11", 11), ("S13", 13), ("S13Random", 13), ("S17Random", 17)):
        specs.append(
            EnvSpec(
                id=f"{NAMESPACE}/MiniGrid-Memory{task}-v0",
                entry_point="envs.minigrid_memory:make_minigrid_memory",
                kwargs={"task": f"Memory{task}"},
                description=f"MiniGrid Memory {task}: match the object seen in the start room",
                origin=MINIGRID_ORIGIN,
                episode_length=5 * size * size,
                fixed_length=False,
            )
        )
    for delay in (5, 10, 30, 100, 200, 300, 1000):  # 10…1000: the memory-length benchmark (docs/memory-length.md)
        specs.append(
            EnvSpec(
                id=f"{NAMESPACE}/CueRecall-D{delay}-v0",
                entry_point="envs.cue_recall:CueRecall",
                kwargs={"delay": delay},
                description=f"cue recall: answer the cue shown {delay} blank steps earlier",
                origin=OWN_ORIGIN,
                episode_length=delay + 2,
                memory_length=delay + 1,  # cue at t = 0, query at t = delay + 1
                family="CueRecall",
            )
        )
    return specs


ENV_SPECS: tuple[EnvSpec, ...] = tuple(_tvt_specs() + _popgym_specs() + _other_specs())
_BY_ID = {spec.id: spec for spec in ENV_SPECS}


def spec_table() -> tuple[EnvSpec, ...]:
    """All registered environments, in table order."""
    return ENV_SPECS


def close_matches(name: str, candidates: Iterable[str], limit: int = 5) -> str:
    """The candidates most like ``name`` (similar spelling, or containing it), for messages."""
    candidates = list(candidates)
    lowered = name.lower()
    found = [c for c in candidates if lowered and lowered in c.lower()]
    found += difflib.get_close_matches(name, candidates, n=limit, cutoff=0.5)
    unique = list(dict.fromkeys(found))[:limit]
    return ", ".join(unique) if unique else "none"


def get_spec(env_id: str) -> EnvSpec:
    """The table row of a project id; ValueError listing close matches for an unknown one."""
    try:
        return _BY_ID[env_id]
    except KeyError:
        raise ValueError(
            f"unknown environment id {env_id!r}; close matches: {close_matches(env_id, _BY_ID)}. "
            "`rllib-shm envs` lists them all."
        ) from None


def register() -> None:
    """Register every table id with gymnasium. Idempotent: ids already registered with the same
    entry point and kwargs are skipped; an id taken by something else raises ValueError."""
    for spec in ENV_SPECS:
        existing = gym.registry.get(spec.id)
        if existing is None:
            gym.register(id=spec.id, entry_point=spec.entry_point, kwargs=dict(spec.kwargs))
        elif existing.entry_point != spec.entry_point or existing.kwargs != dict(spec.kwargs):
            raise ValueError(
                f"{spec.id!r} is already registered with gymnasium as {existing.entry_point} "
                f"{existing.kwargs}, not as this project's {spec.entry_point} {dict(spec.kwargs)}"
            )


def make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` for a project id or any registered gymnasium id, after :func:`register`.

    Raises ValueError listing close matches when the id is unknown.
    """
    register()
    if env_id not in gym.registry:
        candidates = list(_BY_ID) + [i for i in gym.registry if i not in _BY_ID]
        raise ValueError(
            f"unknown environment id {env_id!r}; close matches: {close_matches(env_id, candidates)}. "
            "`rllib-shm envs` lists the project's ids."
        )
    return gym.make(env_id, **kwargs)
