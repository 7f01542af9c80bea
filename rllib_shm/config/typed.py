"""Frozen dataclasses from plain data (YAML), with every key and type checked.

``build(cls, data, path)`` builds ``cls`` (recursively through nested dataclass fields) from a
mapping; unknown keys raise a ``ValueError`` naming them as ``section.key`` with the valid ones;
values are converted or refused according to the field's annotation (bool, int, float, str, dict,
tuples, ``X | None``; floats must be finite). ``plain(value)`` is the inverse direction: tuples become lists.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Section:
    ...     lr: float = 1e-3
    ...     sizes: tuple[int, ...] = (64,)
    >>> build(Section, {"lr": "5e-4", "sizes": [32, 32]}, "algo")
    Section(lr=0.0005, sizes=(32, 32))
    >>> build(Section, {"lrr": 1}, "algo")
    Traceback (most recent call last):
    ...
    ValueError: unknown config key(s) ['algo.lrr']; valid keys in algo: ['lr', 'sizes']
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def build(cls: type, data: Any, path: str):
    """Dataclass ``cls`` from a dict, recursively, with key and type checks."""
    where = path or "the config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        prefix = f"{path}." if path else ""
        raise ValueError(f"unknown config key(s) {[prefix + k for k in unknown]}; valid keys"
                         f"{' in ' + path if path else ''}: {names}")
    values = {}
    for name, raw in data.items():
        key = f"{path}.{name}" if path else name
        values[name] = _convert(hints[name], raw, key)
    try:
        return cls(**values)
    except ValueError as error:
        message = str(error)
        raise ValueError(message if not path or message.startswith(path) else f"{path}: {message}") from None


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, key)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_convert(item, v, key) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        number = None
        if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        if number is None:
            raise ValueError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(number):  # .inf / .nan would train into non-finite weights
            raise ValueError(f"{key}: expected a finite number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    return value
