"""The grid a study is expected to fill: every combination of its searched values (choices, and
every integer of an int range), each with the curated params its trial would log, so that it falls
into the same (task, variant) cell as the trial runs (``grouping.py``). A space with a continuous
distribution has no grid."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from rllib_shm.studies.search_space import trial_config
from rllib_shm.studies.study import Study
from rllib_shm.tracking import curated_params

MAX_POINTS = 10_000  # larger grids are not enumerated


@dataclass(frozen=True)
class GridPoint:
    params: dict[str, str]  # as the trial's MLflow params would read
    searched: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return self.params["env.id"]


@dataclass(frozen=True)
class Grid:
    points: tuple[GridPoint, ...]  # empty when ``reason`` says why there is no grid
    num_samples: int  # trials the study asks for
    reason: str = ""


def _values(kind: str, args: list) -> list | None:
    if kind == "choice":
        return list(args)
    if kind in ("int", "logint"):
        return list(range(args[0], args[1] + 1))
    return None  # continuous


def expected_grid(study: Study) -> Grid:
    """Every combination of ``study``'s searched values, or an empty grid with the reason."""
    space = study.space
    values = {path: _values(kind, args) for path, (kind, args) in space.items()}
    continuous = [path for path, candidates in values.items() if candidates is None]
    if continuous:
        return Grid((), study.tune.num_samples, f"the search space is continuous in {continuous}")
    size = 1
    for candidates in values.values():
        size *= len(candidates)
    if size > MAX_POINTS:
        return Grid((), study.tune.num_samples, f"the grid has {size:,} combinations (more than {MAX_POINTS:,})")
    points = []
    for combination in itertools.product(*values.values()):
        searched = dict(zip(values, combination, strict=True))
        params = curated_params(trial_config(study.base, searched), searched)
        points.append(GridPoint({key: str(value) for key, value in params.items()}, searched))
    return Grid(tuple(points), study.tune.num_samples)
