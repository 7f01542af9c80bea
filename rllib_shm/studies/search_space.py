"""Search spaces written structurally in a study YAML, turned into Optuna distributions.

Any value of the experiment config may be replaced by one distribution:

    {loguniform: [low, high]}   float, log scale          {uniform: [low, high]}   float
    {int: [low, high]}          integer, both inclusive    {logint: [low, high]}    integer, log scale
    {choice: [a, b, ...]}       one of the listed values (any YAML values, e.g. memory kinds)

A ``{choice: [...]}`` over mappings replaces the whole node it stands at. To vary several paths
at once in named, partial ways (one-factor-at-a-time designs around a baseline), a study may have
a top-level ``variants`` mapping, name → overrides (dotted paths → plain values, as ``--set``):

    variants:
      baseline: {}                                   # the config as written
      theta-fixed: {module.memory.theta_mode: fixed}
      H128-lr1e-3: {module.memory.mem_size: 128, algo.lr: 1.0e-3}

It is searched as the path ``variant``, a choice over the names (so Optuna, the grid sampler,
the leaderboard and MLflow's ``searched.variant`` see readable names); a trial's config is the
plain config with its variant's overrides set, then the other searched values. A variant's path
may not also be searched elsewhere (nor lie under or over a searched path), and values inside
variants are plain (no distributions).

``split_search_space`` separates the plain config from the searched paths ("module.memory.kind"),
checks each distribution (known kind, low < high, non-empty choices, positive bounds for log
scales) and checks that every path exists and every candidate value is valid for its field, by
validating the config at the bounds / at every choice / with every variant, before anything runs.
"""

from __future__ import annotations

import copy
from typing import Any

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.paths import pop_path, set_path

KINDS = ("loguniform", "uniform", "int", "logint", "choice")
VARIANTS = "variants"  # the study's top-level mapping of named overrides (kept in ``base`` for trial_config)
VARIANT = "variant"  # the searched path choosing one of them


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


def _check_variants(variants: Any) -> dict[str, dict[str, Any]]:
    """The ``variants`` mapping, checked for shape: names → {dotted path: plain value}."""
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f"{VARIANTS} must be a non-empty mapping of name → overrides, got {variants!r}")
    checked = {}
    for name, overrides in variants.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{VARIANTS}: names must be non-empty strings, got {name!r}")
        overrides = {} if overrides is None else overrides
        if not isinstance(overrides, dict):
            raise ValueError(f"{VARIANTS}.{name} must map dotted paths to values (e.g. algo.lr: 1.0e-3), "
                             f"got {overrides!r}")
        for path, value in overrides.items():
            if not isinstance(path, str):
                raise ValueError(f"{VARIANTS}.{name}: paths must be strings like module.memory.kind, got {path!r}")
            if is_distribution(value):
                raise ValueError(f"{VARIANTS}.{name}.{path}: a variant sets plain values; search with a "
                                 "distribution outside variants")
        checked[name] = dict(overrides)
    return checked


def _overlaps(a: str, b: str) -> bool:
    """Whether dotted paths a and b are the same node or one lies under the other."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def split_search_space(data: dict) -> tuple[dict, dict[str, tuple[str, list]]]:
    """(config dict with searched values removed, {path: (kind, args)}); raises on any problem.

    A top-level ``variants`` mapping becomes the searched path ``variant`` (a choice over its
    names) and stays in the returned dict under ``variants``, where ``trial_config`` reads it."""
    data = copy.deepcopy(data)
    variants = _check_variants(data.pop(VARIANTS)) if VARIANTS in data else None
    found: dict[str, dict] = {}
    base = _walk(data, "", found)
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
    if variants is not None:
        for name, overrides in variants.items():
            clash = [f"{p} (searched as {q})" for p in overrides for q in space if _overlaps(p, q)]
            if clash:
                raise ValueError(f"{VARIANTS}.{name} sets {', '.join(clash)}: a path is either searched or "
                                 "set by variants, not both")
            try:
                trial_config({**base, VARIANTS: variants}, {VARIANT: name})
            except ValueError as error:
                raise ValueError(f"{VARIANTS}.{name} is invalid: {error}") from None
        base[VARIANTS] = variants
        space[VARIANT] = ("choice", list(variants))
    return base, space


def indexed(choices: list) -> bool:
    """Whether a choice's values are not all scalars (None, bool, int, float, str): Optuna then
    sees their indices instead (``to_optuna``, ``decode``)."""
    return not all(v is None or isinstance(v, bool | int | float | str) for v in choices)


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
            result[path] = od.CategoricalDistribution(list(range(len(args))) if indexed(args) else args)
    return result


def decode(space: dict[str, tuple[str, list]], suggested: dict[str, Any]) -> dict[str, Any]:
    """Optuna's suggestion → config values (indexed non-scalar choices mapped back)."""
    values = {}
    for path, value in suggested.items():
        kind, args = space[path]
        values[path] = args[value] if kind == "choice" and indexed(args) else value
    return values


def trial_config(base: dict, values: dict[str, Any]) -> ExperimentConfig:
    """The full experiment config of one trial: ``base`` with the chosen variant's overrides (when
    the study has ``variants``) and the searched ``values`` set."""
    data = copy.deepcopy(base)
    variants = data.pop(VARIANTS, {})
    for path, value in values.items():
        if path != VARIANT:
            set_path(data, path, value)
            continue
        if value not in variants:
            raise ValueError(f"{VARIANT} {value!r} is not one of the study's {VARIANTS} {list(variants)}")
        for override, setting in variants[value].items():
            set_path(data, override, copy.deepcopy(setting))
    return ExperimentConfig.from_dict(data)
