"""Experiment configuration: frozen dataclasses loaded from YAML, with ``--set`` overrides.

    env:    which task (any id ``rllib_shm.rllib.resolve_env`` accepts) and its kwargs
    module: the memory RLModule (``ModuleConfig``, with the nested ``memory``: ``MemoryConfig``)
    algo:   PPO and resources
    run:    seed, budget, checkpoints, outputs, tracking

Unknown or misspelled keys raise a ``ValueError`` naming the key (as ``section.key``) and the valid
ones; values are type-checked against the dataclass fields before any work starts. RLlib's key
names live only in ``build.py``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rllib_shm.memory import MemoryConfig
from rllib_shm.rllib.module_config import ModuleConfig


@dataclass(frozen=True)
class EnvSection:
    id: str = "rllib_shm/popgym-RepeatFirstEasy-v0"  # project id, gymnasium id or module:Class
    config: dict = field(default_factory=dict)  # constructor kwargs (RLlib env_config)


@dataclass(frozen=True)
class AlgoSection:
    lr: float = 5e-4  # Adam learning rate
    gamma: float = 0.99  # discount
    lambda_: float = 0.95  # GAE λ (YAML key: lambda_)
    clip_param: float = 0.2  # PPO clip
    vf_loss_coeff: float = 0.5  # value loss weight
    entropy_coeff: float = 0.0  # entropy bonus
    grad_clip: float | None = 1.0  # global gradient-norm clip (None: off)
    num_epochs: int = 4  # SGD passes over each train batch
    train_batch_size: int = 2000  # env steps per iteration (per learner)
    minibatch_size: int = 500  # env steps per SGD minibatch
    num_env_runners: int = 0  # remote sampling workers (0: sample in the driver/trial process)
    num_envs_per_env_runner: int = 8  # vectorised envs per runner
    num_cpus_per_env_runner: float = 1.0
    num_learners: int = 0  # remote learners (0: learn in the driver/trial process)
    num_gpus_per_learner: float = 0.0  # fractions let several trials share a GPU

    def __post_init__(self) -> None:
        for name in ("lr", "gamma", "clip_param"):
            if not getattr(self, name) > 0:
                raise ValueError(f"algo.{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.lambda_ <= 1 or not 0 < self.gamma <= 1:
            raise ValueError(f"algo.gamma must be in (0, 1] and algo.lambda_ in [0, 1], got "
                             f"{self.gamma}, {self.lambda_}")
        for name in ("num_epochs", "train_batch_size", "minibatch_size", "num_envs_per_env_runner"):
            if getattr(self, name) < 1:
                raise ValueError(f"algo.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(f"algo.minibatch_size ({self.minibatch_size}) must not exceed "
                             f"algo.train_batch_size ({self.train_batch_size})")
        for name in ("num_env_runners", "num_learners", "num_gpus_per_learner", "num_cpus_per_env_runner",
                     "vf_loss_coeff", "entropy_coeff"):
            if getattr(self, name) < 0:
                raise ValueError(f"algo.{name} must be ≥ 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class RunSection:
    name: str = "run"  # run name (directory prefix, MLflow run name)
    seed: int = 0  # seeds RLlib (envs, sampling, init) and the memory's θ generator
    stop_iters: int = 50  # training iterations
    stop_return: float | None = None  # stop early once the mean return reaches this
    checkpoint_every: int = 10  # iterations between checkpoints (and one at the end)
    output_dir: str = "results"  # runs go to <output_dir>/<name>-<time>/
    mlflow_uri: str | None = None  # tracking URI; default sqlite:///<abs output_dir>/mlflow.db
    mlflow_experiment: str = "rllib-shm"  # MLflow experiment name

    def __post_init__(self) -> None:
        if self.stop_iters < 1 or self.checkpoint_every < 1:
            raise ValueError(f"run.stop_iters and run.checkpoint_every must be ≥ 1, got "
                             f"{self.stop_iters}, {self.checkpoint_every}")
        if not self.name or "/" in self.name:
            raise ValueError(f"run.name must be a non-empty name without '/', got {self.name!r}")


@dataclass(frozen=True)
class ExperimentConfig:
    env: EnvSection = field(default_factory=EnvSection)
    module: ModuleConfig = field(default_factory=ModuleConfig)
    algo: AlgoSection = field(default_factory=AlgoSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-safe dict (tuples as lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        return _build(cls, data, "")


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read YAML (safe loader) from ``path`` (or start from the defaults), apply ``--set``
    overrides ``section.key=value`` (value parsed as YAML), validate everything."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file {str(path)!r} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ValueError(f"config file {str(path)!r} is not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping of sections, got {type(loaded).__name__}")
        data = loaded or {}
    for override in overrides:
        apply_override(data, override)
    return ExperimentConfig.from_dict(data)


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``a.b.c=value`` in the nested dict ``data`` (value parsed with the YAML loader)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects section.key=value, got {override!r}")
    parts = key.strip().split(".")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"--set {override!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Any, path: str):
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
        return _build(hint, value, key)
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
        if isinstance(value, str):  # PyYAML reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return value
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    return value


__all__ = ["AlgoSection", "EnvSection", "ExperimentConfig", "MemoryConfig", "ModuleConfig", "RunSection",
           "apply_override", "load_config"]
