"""The cells of a report: (task, variant), averaged over seeds.

The task is the env id. The variant is the memory (kind and size: "SHM H128", "GRU 256",
"FFM 32×8", "MLP") plus every other setting that varies across the report's runs, so that an
ablation over, say, ``module.memory.theta_mode`` and ``algo.lr`` gets one variant per combination
("SHM H64 · theta_mode=fixed, lr=0.001"). The settings compared are a run's searched values (a
study's trials) or, for runs outside a study, its curated params; the seed (``run.seed``) is what
gets averaged over and is never part of a variant.

    >>> from types import SimpleNamespace as Run
    >>> runs = [Run(params={"module.memory.kind": "shm", "module.memory.mem_size": "64", "run.seed": str(s)},
    ...             searched={"module.memory.theta_mode": mode, "algo.lr": 1e-3, "run.seed": s})
    ...         for mode in ("random", "fixed") for s in (0, 1)]
    >>> [v.label for v in variants(runs)][::2]
    ['SHM H64 · theta_mode=random', 'SHM H64 · theta_mode=fixed']

A study's ``variants`` are shown by name alone ("SHM H64 · signed"), and a variant whose name
already says the memory is its whole label ("gru-256", not "GRU 256 · variant=gru-256").

A SAC critic with its own memory (the ``algo.sac.critic_memory`` param) is the compared memory of
the paper's meta-RL runs, whose actors are alike: the label names both ("GRU 128 · critic SHM
H24"), a variant that is only the critic's kind is said by it, and ``memory_kind`` is the critic's.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rllib_shm.tracking.run_names import says_memory, says_memory_alone

SEED_PATH = "run.seed"
TASK_PATH = "env.id"
#: config paths the memory label shows
MEMORY_PATHS = ("module.memory.kind", "module.memory.mem_size", "module.memory.context_size")
#: curated params that are not variant settings: the task, the seed and what the memory label shows
NOT_SETTINGS = (TASK_PATH, SEED_PATH, *MEMORY_PATHS)
KIND_ORDER = ("shm", "gru", "lstm", "ffm", "mlp")
VARIANT_PATH = "variant"  # a study's named variants (``tracking.VARIANT_PARAM``)


class Settings(Protocol):
    params: Mapping[str, str]  # curated params, as MLflow holds them (text)
    searched: Mapping[str, Any]  # searched values by config path (empty outside a study)


@dataclass(frozen=True)
class Variant:
    label: str
    memory_kind: str
    sort_key: tuple


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict values (a searched ``module.memory`` choice) as dotted paths."""
    flat = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _settings(item: Settings) -> dict[str, Any]:
    if item.searched:
        excluded = (SEED_PATH, TASK_PATH, *MEMORY_PATHS)
        return {k: v for k, v in flatten(item.searched).items() if k not in excluded}
    return {k: v for k, v in item.params.items() if k not in NOT_SETTINGS}


def _memory(item: Settings) -> tuple[str, str, str | None]:
    """(kind, size, FFM context size) from the curated params, else from the searched values."""
    searched = flatten(item.searched)
    kind = item.params.get("module.memory.kind") or str(searched.get("module.memory.kind", "?"))
    size = item.params.get("module.memory.mem_size") or str(searched.get("module.memory.mem_size", "?"))
    context = item.params.get("module.memory.context_size") or searched.get("module.memory.context_size")
    return kind, size, None if context is None else str(context)


def _critic(item: Settings) -> tuple[str, str, str | None] | None:
    """(kind, size, FFM context size) of a SAC critic's own memory, from its param (a mapping
    logged as text), or None where the critic runs the actor's memory."""
    raw = item.params.get("algo.sac.critic_memory")
    if raw is None or raw in ("None", ""):
        return None
    try:
        memory = raw if isinstance(raw, Mapping) else ast.literal_eval(str(raw))
    except (ValueError, SyntaxError):
        return None
    if not isinstance(memory, Mapping) or "kind" not in memory:
        return None
    context = memory.get("context_size") if memory["kind"] == "ffm" else None
    return str(memory["kind"]), str(memory.get("mem_size", "?")), None if context is None else str(context)


def _memory_label(kind: str, size: str, context: str | None, mlp_sizes: set[str]) -> str:
    if kind == "shm":
        return f"SHM H{size}"
    if kind == "ffm":
        return f"FFM {size}×{context}" if context else f"FFM {size}"
    if kind == "mlp":
        return "MLP" if len(mlp_sizes) == 1 else f"MLP {size}"
    return f"{kind.upper()} {size}"


def _format(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _order(value: Any) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, math.inf, str(value))


def varying_settings(items: Sequence[Settings]) -> list[str]:
    """The settings with more than one value among the items that have them, in first-seen order."""
    seen: dict[str, set[str]] = {}
    for item in items:
        for key, value in _settings(item).items():
            seen.setdefault(key, set()).add(repr(value))
    return [key for key, values in seen.items() if len(values) > 1]


def variants(items: Sequence[Settings]) -> list[Variant]:
    """Each item's variant; labels are comparable only within one call (what varies depends on all)."""
    keys = varying_settings(items)
    names = {key: key.rsplit(".", 1)[-1] for key in keys}
    if len(set(names.values())) < len(names):  # two settings end alike: show whole paths
        names = {key: key for key in keys}
    mlp_sizes = {_memory(item)[1] for item in items if _memory(item)[0] == "mlp"}
    result = []
    for item in items:
        kind, size, context = _memory(item)
        label = _memory_label(kind, size, context, mlp_sizes)
        settings = _settings(item)
        extras = [(key, settings[key]) for key in keys if key in settings]
        shown = (kind, None if label == "MLP" else size, context if kind == "ffm" else None)
        critic = _critic(item)
        variant_only = [key for key, _ in extras] == [VARIANT_PATH]
        if critic is not None:
            label += " · critic " + _memory_label(*critic, {critic[1]})
            if variant_only and says_memory_alone(str(extras[0][1]), *critic):
                extras = []  # the critic's label says the variant
            kind, size = critic[0], critic[1]  # the compared memory: the critic's
        elif variant_only and says_memory(str(extras[0][1]), *shown):
            label, extras = str(extras[0][1]), []
        if extras:
            label += " · " + ", ".join(_format(value) if key == VARIANT_PATH else f"{names[key]}={_format(value)}"
                                       for key, value in extras)
        rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        result.append(Variant(label, kind, (rank, kind, _order(size), tuple(_order(v) for _, v in extras), label)))
    return result
