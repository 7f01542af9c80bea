"""A study: an experiment config with searched values, plus the ``tune`` section.

    tune:
      name: quickstart            # Tune experiment directory, Optuna study name, MLflow parent run
      num_samples: 6              # trials
      max_concurrent: 2           # trials at once
      seed: 0                     # Optuna sampler seed: same seed + config → same suggestions
      sampler: tpe                # tpe (Optuna's default) or grid (every combination once; choice/int only)
      metric: episode_return_max_mean   # MMER (default) or episode_return_mean
      mode: max
      scheduler: none             # or asha (early stopping of poor trials)
      storage_path: results/tune  # local dir, or shared storage (NFS path / s3://...) on a cluster
      study_storage: null         # Optuna storage URL; default sqlite:///<storage_path>/<name>/optuna.db
      max_failures: 2             # retries of a failed trial from its last checkpoint
      keep_checkpoints: 2         # per trial, best by metric

A top-level ``variants`` mapping (name → overrides by dotted path) searches named partial
configurations as the path ``variant`` (``search_space.py``), e.g. one-factor-at-a-time designs:

    variants:
      baseline: {}
      theta-fixed: {module.memory.theta_mode: fixed}
      lr-1e-3: {algo.lr: 1.0e-3}
    run: {seed: {choice: [0, 1, 2]}}       # with sampler: grid, every variant × every seed

Every other section means in a trial what it means in ``rllib-shm train``: ``run.stop_iters``,
``run.stop_return`` and ``run.stop_success`` end a trial, ``run.checkpoint_every`` sets its
checkpoints, ``run.seed`` its seed, ``run.mlflow_uri`` / ``run.mlflow_experiment`` where the study's
runs go. ``run.name`` and
``run.output_dir`` have no meaning in a study and are refused (``NOT_IN_STUDIES`` says why).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rllib_shm.config import ExperimentConfig, apply_override, read_mapping
from rllib_shm.config.paths import get_path
from rllib_shm.config.typed import build
from rllib_shm.studies.search_space import VARIANTS, split_search_space, trial_config

METRICS = ("episode_return_max_mean", "episode_return_mean")
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a directory, an Optuna study, an MLflow run name
#: run keys a study cannot honour, and why (every other key means in a trial what it means in ``train``;
#: ``run.stop_return`` / ``run.stop_success`` end a trial early, ``run.mlflow_uri`` /
#: ``run.mlflow_experiment`` say where the study's runs go)
NOT_IN_STUDIES = {
    "run.name": "a study names itself by tune.name and its trials trial_<id>",
    "run.output_dir": "a study writes everything under tune.storage_path/<tune.name> (or --storage)",
}


@dataclass(frozen=True)
class TuneSection:
    name: str = "study"
    num_samples: int = 4
    max_concurrent: int = 1
    seed: int = 0
    sampler: str = "tpe"  # tpe | grid
    metric: str = "episode_return_max_mean"
    mode: str = "max"
    scheduler: str = "none"
    grace_period: int = 5  # ASHA: iterations before a trial can be stopped
    reduction_factor: int = 2  # ASHA
    storage_path: str = "results/tune"
    study_storage: str | None = None
    max_failures: int = 2
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not STUDY_NAME.fullmatch(self.name):
            raise ValueError(f"tune.name must be 1 to 100 letters, digits, '.', '_' or '-', starting with a letter or "
                             f"digit (it names a directory, an Optuna study and an MLflow run), got {self.name!r}")
        if self.seed < 0:
            raise ValueError(f"tune.seed must be ≥ 0, got {self.seed}")
        for key in ("num_samples", "max_concurrent", "grace_period", "reduction_factor", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ValueError(f"tune.{key} must be ≥ 1, got {getattr(self, key)}")
        if self.max_failures < 0:
            raise ValueError(f"tune.max_failures must be ≥ 0, got {self.max_failures}")
        if self.metric not in METRICS:
            raise ValueError(f"tune.metric must be one of {METRICS}, got {self.metric!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"tune.mode must be 'max' or 'min', got {self.mode!r}")
        if self.sampler not in ("tpe", "grid"):
            raise ValueError(f"tune.sampler must be 'tpe' or 'grid', got {self.sampler!r}")
        if self.scheduler not in ("none", "asha"):
            raise ValueError(f"tune.scheduler must be 'none' or 'asha', got {self.scheduler!r}")

    def experiment_dir(self) -> str:
        """Where Tune keeps this study (absolute for local paths)."""
        if "://" in self.storage_path:
            return f"{self.storage_path.rstrip('/')}/{self.name}"
        return str(Path(self.storage_path).resolve() / self.name)

    def optuna_storage(self) -> str:
        if self.study_storage:
            return self.study_storage
        if "://" in self.storage_path:
            raise ValueError("tune.study_storage (a database URL) is required when tune.storage_path is remote")
        return f"sqlite:///{Path(self.storage_path).resolve() / self.name / 'optuna.db'}"


@dataclass(frozen=True)
class Study:
    base: dict  # the experiment config without the searched values
    space: dict  # {path: (kind, args)}
    tune: TuneSection
    raw: dict = field(default_factory=dict)  # the study as written (after overrides), for the record


def load_study(path: str | Path, overrides: list[str] | tuple[str, ...] = (), **tune_overrides: Any) -> Study:
    """Read and validate a study YAML; ``tune_overrides`` (CLI flags) win over the file."""
    data = read_mapping(path, "study file")
    for override in overrides:
        apply_override(data, override)
    variant_paths = [path for overrides in (data.get(VARIANTS) or {}).values() if isinstance(overrides, dict)
                     for path in overrides]
    for key, reason in NOT_IN_STUDIES.items():
        if get_path(data, key, None) is not None or key in variant_paths:
            raise ValueError(f"{key} has no meaning in a study ({reason}); remove it from the study")
    tune_data = dict(data.pop("tune", None) or {})
    tune_data.update({k: v for k, v in tune_overrides.items() if v is not None})
    tune = build(TuneSection, tune_data, "tune")
    raw = copy.deepcopy({**data, "tune": tune_data})
    base, space = split_search_space(data)
    if space and tune.sampler == "grid":
        continuous = [p for p, (kind, _) in space.items() if kind in ("uniform", "loguniform")]
        if continuous:
            raise ValueError(f"tune.sampler 'grid' needs choice or int distributions; {continuous} are continuous")
        size = grid_size(space)
        if tune.num_samples > size:
            raise ValueError(f"tune.num_samples ({tune.num_samples}) exceeds the grid's {size} combinations")
    if not space:
        raise ValueError(f"study {str(path)!r} searches nothing: write at least one value as a distribution, "
                         "e.g. module.memory.kind: {choice: [shm, gru]} or run.seed: {choice: [0, 1, 2]}")
    return Study(base=base, space=space, tune=tune, raw=raw)


def first_config(study: Study) -> ExperimentConfig:
    """The experiment config at every searched path's first candidate (the lower bound, or the first
    choice): what ``tune`` checks before anything runs, and where the study's runs are tracked."""
    return trial_config(study.base, {path: args[0] for path, (_kind, args) in study.space.items()})


def grid_values(space: dict) -> dict[str, list]:
    """Every value of each searched path, in Optuna's encoding (indices for non-scalar choices)."""
    from rllib_shm.studies.search_space import to_optuna

    values = {}
    for path, distribution in to_optuna(space).items():
        kind, args = space[path]
        if kind == "choice":
            values[path] = list(distribution.choices)
        else:
            low, high = args
            values[path] = list(range(low, high + 1))
    return values


def grid_size(space: dict) -> int:
    size = 1
    for values in grid_values(space).values():
        size *= len(values)
    return size
