"""A training run's parameters as a report reads them: named by config path, with its searched
values decoded.

Parameters are named by config path (``tracking.curated_params``); a trial's searched values are
its params at the study's searched paths (a searched mapping, e.g. a ``module.memory`` choice,
from the params under its path), decoded with the study's search space (its parent run's
``space.<path>`` params), or, without one, at the paths its tag ``rllib_shm.searched`` lists.
Runs logged before the parameters were named by config path (``lr``, ``memory.H``, ... and
``searched.<path>`` as Optuna suggested them: indices for choices of non-scalar values) are read
under today's names (``tracking.LEGACY_PARAMS``).
"""

from __future__ import annotations

import ast
from typing import Any

from rllib_shm.studies.search_space import indexed
from rllib_shm.tracking import LEGACY_PARAMS, SEARCHED_TAG

SEARCHED = "searched."
SPACE = "space."


def read_params(raw: dict[str, str], tags: dict[str, str], space: dict | None = None) -> tuple[dict, dict]:
    """(params under today's names, searched values by config path) of a training run."""
    legacy = {key[len(SEARCHED):]: value for key, value in raw.items() if key.startswith(SEARCHED)}
    if legacy or "env.id" not in raw:  # logged before parameters were named by config path
        params = {LEGACY_PARAMS.get(key, key): value for key, value in raw.items() if not key.startswith(SEARCHED)}
        return params, {path: decode_value(value, (space or {}).get(path)) for path, value in legacy.items()}
    paths = list(space) if space else [path for path in tags.get(SEARCHED_TAG, "").split(",") if path]
    return raw, {path: param_value(raw, path, (space or {}).get(path)) for path in paths}


def param_value(params: dict[str, str], path: str, spec: tuple[str, list] | None) -> Any:
    """A searched path's value from a run's params: the param of that name, or, for a searched
    mapping, the params under its path (matched to one of the choices where ``spec`` is known).

    >>> params = {"module.memory.kind": "gru", "module.memory.mem_size": "32", "algo.lr": "0.001"}
    >>> param_value(params, "module.memory", ("choice", [{"kind": "shm"}, {"kind": "gru", "mem_size": 32}]))
    {'kind': 'gru', 'mem_size': 32}
    >>> param_value(params, "algo.lr", ("choice", [1e-3, 2e-3])), param_value(params, "module.memory.kind", None)
    (0.001, 'gru')
    """
    if path in params:
        text = params[path]
        if spec is None:
            return _literal(text)
        kind, args = spec
        if kind == "choice":
            return next((value for value in args if str(value) == text), _literal(text))
        return int(text) if kind in ("int", "logint") else float(text)
    under = {key[len(path) + 1:]: text for key, text in params.items() if key.startswith(path + ".")}
    if spec is not None and spec[0] == "choice":
        for value in spec[1]:
            leaves = _flat(value) if isinstance(value, dict) else {}
            if leaves and all(under.get(key) == str(item) for key, item in leaves.items()):
                return value
    nested: dict[str, Any] = {}
    for key, text in under.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _literal(text)
    return nested


def _flat(values: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def decode_value(text: str, spec: tuple[str, list] | None) -> Any:
    """A ``searched.<path>`` param's text → the config value (``spec``: the path's (kind, args)).

    >>> decode_value("1", ("choice", [{"kind": "shm"}, {"kind": "gru"}]))
    {'kind': 'gru'}
    >>> decode_value("True", ("choice", [True, False])), decode_value("0.001", ("loguniform", [1e-4, 1e-2]))
    (True, 0.001)
    """
    if spec is None:
        return _literal(text)
    kind, args = spec
    if kind == "choice":
        if indexed(args):
            return args[int(text)]
        return next((value for value in args if str(value) == text), _literal(text))
    return int(text) if kind in ("int", "logint") else float(text)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def space_of(parent) -> dict[str, tuple[str, list]]:
    """The search space a study's parent run records as ``space.<path>`` params."""
    space = {}
    for key, value in parent.data.params.items():
        if key.startswith(SPACE):
            (kind, args), = _literal(value).items()
            space[key[len(SPACE):]] = (kind, args)
    return space
