"""The one walker of dotted paths in nested mappings: ``"module.memory.kind"`` (or a tuple of keys).

Used for ``--set section.key=value``, a study's searched values and RLlib's nested result dicts.

    >>> data = {"module": {"memory": {"kind": "shm"}}}
    >>> get_path(data, "module.memory.kind")
    'shm'
    >>> set_path(data, "algo.lr", 1e-3); data["algo"]
    {'lr': 0.001}
    >>> pop_path(data, "module.memory.kind"), data["module"]
    ('shm', {'memory': {}})
    >>> get_path({"a": {}}, ("a", "b"), default=None) is None
    True
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

_MISSING = object()


def split(path: str | tuple[str, ...]) -> tuple[str, ...]:
    """``"a.b.c"`` or ``("a", "b", "c")`` → ``("a", "b", "c")``; empty parts are refused."""
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(path)
    if not parts or any(not part for part in parts):
        raise ValueError(f"{path!r} is not a dotted path of keys (expected e.g. section.key)")
    return parts


def _parent(data: Mapping, parts: tuple[str, ...], create: bool):
    """The mapping holding the last key of ``parts`` (None where a section is missing)."""
    node = data
    for index, part in enumerate(parts[:-1]):
        child = node.get(part, _MISSING) if isinstance(node, Mapping) else _MISSING
        if child is _MISSING or (create and child is None):
            if not create:
                return None
            child = node[part] = {}
        if not isinstance(child, Mapping):
            if create:
                raise ValueError(f"{'.'.join(parts[: index + 1])!r} is not a section (it holds {child!r})")
            return None
        node = child
    return node


def get_path(data: Mapping, path: str | tuple[str, ...], default: Any = _MISSING) -> Any:
    """``data[a][b][c]`` for path ``a.b.c``; ``default`` where missing (KeyError without one)."""
    parts = split(path)
    parent = _parent(data, parts, create=False)
    if not isinstance(parent, Mapping) or parts[-1] not in parent:
        if default is _MISSING:
            raise KeyError(".".join(parts))
        return default
    return parent[parts[-1]]


def set_path(data: MutableMapping, path: str | tuple[str, ...], value: Any) -> None:
    """``data[a][b][c] = value``, creating missing sections; ValueError if a section is a value."""
    parts = split(path)
    _parent(data, parts, create=True)[parts[-1]] = value


def pop_path(data: MutableMapping, path: str | tuple[str, ...], default: Any = None) -> Any:
    """Remove and return ``data[a][b][c]`` (``default`` where missing)."""
    parts = split(path)
    parent = _parent(data, parts, create=False)
    if not isinstance(parent, MutableMapping):
        return default
    return parent.pop(parts[-1], default)
