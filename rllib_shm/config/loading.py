"""Reading configs: YAML files (safe loader) and ``--set section.key=value`` overrides.

    >>> config = load_config(None, ["module.memory.kind=gru", "algo.lr=1e-3"])
    >>> config.module.memory.kind, config.algo.lr
    ('gru', 0.001)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rllib_shm.config.experiment import ExperimentConfig
from rllib_shm.config.paths import set_path


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping of sections in the YAML file ``path`` ({} for an empty file); ValueError naming
    the file (as ``what``) when it is missing, not YAML, or not a mapping."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {str(path)!r} is a directory, expected a YAML file")
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ValueError(f"{what} {str(path)!r} cannot be read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {str(path)!r} is not valid YAML: {error}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"{what} {str(path)!r} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded or {}


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read YAML from ``path`` (or start from the defaults), apply ``--set`` overrides
    ``section.key=value`` (value parsed as YAML), validate everything."""
    data = read_mapping(path) if path is not None else {}
    for override in overrides:
        apply_override(data, override)
    return ExperimentConfig.from_dict(data)


def parse_value(raw: str) -> Any:
    """A ``--set`` value: YAML (``3`` an int, ``1e-3`` a float, ``[1, 2]`` a list, ``true``, ``null``),
    the raw text when it is not YAML, None when empty. A number written with underscores stays text
    (``50_150``, a meta-RL task split: YAML 1.1 would read the number 50150)."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        return raw
    if isinstance(value, int | float) and not isinstance(value, bool) and "_" in raw:
        return raw.strip()
    return value


def parse_assignments(items: list[str] | tuple[str, ...], flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` items (values as ``parse_value``) → a flat dict, later items winning; KEY
    must be a plain name. ValueError naming ``flag`` for a malformed item.

        >>> parse_assignments(["subset=eval", "horizon=50", "split=50_150"], "--env-config")
        {'subset': 'eval', 'horizon': 50, 'split': '50_150'}
    """
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"{flag} expects KEY=VALUE with KEY a plain name, got {item!r}")
        values[key] = parse_value(raw)
    return values


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in the nested dict ``data`` (value parsed with the YAML loader)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects section.key=value, got {override!r}")
    value = parse_value(raw)
    try:
        set_path(data, key.strip(), value)
    except ValueError as error:
        raise ValueError(f"--set {override!r}: {error}") from None
