"""Search spaces written structurally in a study YAML, turned into Optuna distributions.

Any value of the experiment config may be replaced by one distribution:

    {loguniform: [low, high]}   float, log scale          {uniform: [low, high]}   float
    {int: [low, high]}          integer, both inclusive    {logint: [low, high]}    integer, log scale
    {choice: [a, b, ...]}       one of the listed values (any YAML values, e.g. memory kinds)

``split_search_space`` separates the plain config from the searched paths ("module.memory.kind"),
checks each distribution (known kind, low < high, non-empty choices, positive bounds for log
scales) and checks that every path exists and every candidate value is valid for its field, by
validating the config at the bounds / at every choice, before anything runs.
"""

from __future__ import annotations

import copy
from typing import Any

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.paths import pop_path, set_path

KINDS = ("loguniform", "uniform", "int", "logint", "choice")


def is_distribution(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in KINDS


def _walk(node: Any, prefix: str, found: dict[str, dict]) -> Any:
    if is_distribution(node):
        found[prefix] = node
        return None
    if isinstance(node, dict):
        return {k: _walk(v, f"{prefix}.{k}" if prefix else k, found) for k, v in node.items()}
    return node


def _check(path: str, spec: dict) -> tuple[str, Any]:
    kind, args = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError(f"search space {path}: choice needs a non-empty list, got {args!r}")
        return kind, args
    if not (isinstance(args, list) and len(args) == 2):
        raise ValueError(f"search space {path}: {kind} needs [low, high], got {args!r}")
    integer = kind in ("int", "logint")
    bounds = []
    for bound in args:
        if integer and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise ValueError(f"search space {path}: {kind} bounds must be integers, got {args!r}")
        try:  # PyYAML reads "3e-3" (no dot) as a string
            bounds.append(bound if integer else float(bound))
        except (TypeError, ValueError):
            raise ValueError(f"search space {path}: {kind} bounds must be numbers, got {args!r}") from None
    low, high = bounds
    if not low < high:
        raise ValueError(f"search space {path}: {kind} needs low < high, got [{low}, {high}]")
    if kind in ("loguniform", "logint") and low <= 0:
        raise ValueError(f"search space {path}: {kind} needs low > 0, got {low}")
    return kind, [low, high]


def split_search_space(data: dict) -> tuple[dict, dict[str, tuple[str, list]]]:
    """(config dict with searched values removed, {path: (kind, args)}); raises on any problem."""
    found: dict[str, dict] = {}
    base = _walk(copy.deepcopy(data), "", found)
    space = {path: _check(path, spec) for path, spec in found.items()}
    for path in space:
        pop_path(base, path)
    ExperimentConfig.from_dict(base)  # the plain part alone is valid
    for path, (_kind, args) in space.items():
        for candidate in args:
            trial = copy.deepcopy(base)
            set_path(trial, path, candidate)
            try:
                ExperimentConfig.from_dict(trial)
            except ValueError as error:
                raise ValueError(f"search space {path}: value {candidate!r} is invalid: {error}") from None
    return base, space


def to_optuna(space: dict[str, tuple[str, list]]) -> dict:
    """{path: optuna distribution}; choices of non-scalar values are indexed (see ``decode``)."""
    import optuna.distributions as od

    result = {}
    for path, (kind, args) in space.items():
        if kind == "loguniform":
            result[path] = od.FloatDistribution(args[0], args[1], log=True)
        elif kind == "uniform":
            result[path] = od.FloatDistribution(args[0], args[1])
        elif kind == "int":
            result[path] = od.IntDistribution(args[0], args[1])
        elif kind == "logint":
            result[path] = od.IntDistribution(args[0], args[1], log=True)
        else:
            scalar = all(v is None or isinstance(v, bool | int | float | str) for v in args)
            result[path] = od.CategoricalDistribution(args if scalar else list(range(len(args))))
    return result


def decode(space: dict[str, tuple[str, list]], suggested: dict[str, Any]) -> dict[str, Any]:
    """Optuna's suggestion → config values (indexed non-scalar choices mapped back)."""
    values = {}
    for path, value in suggested.items():
        kind, args = space[path]
        scalar = all(v is None or isinstance(v, bool | int | float | str) for v in args)
        values[path] = args[value] if kind == "choice" and not scalar else value
    return values


def trial_config(base: dict, values: dict[str, Any]) -> ExperimentConfig:
    """The full experiment config of one trial."""
    data = copy.deepcopy(base)
    for path, value in values.items():
        set_path(data, path, value)
    return ExperimentConfig.from_dict(data)
