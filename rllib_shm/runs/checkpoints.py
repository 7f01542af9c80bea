"""Writing checkpoints whole, and loading a trained module from one through the project's class, without Ray.

A checkpoint is written into a hidden scratch directory beside its final name and renamed into place
once ``save_to_path`` and ``rllib_shm.json`` are complete (``rllib_shm.files``): an interrupted save
leaves no ``iter_*`` directory, only a hidden scratch one if the process was killed outright, which
nothing reads. Checkpoints are pickles: load only checkpoints you trust.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rllib_shm.config import ExperimentConfig
from rllib_shm.files import publish_directory, scratch_directory, write_json
from rllib_shm.runs.loop import nonfinite_weights

MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"
CHECKPOINT_META = "rllib_shm.json"


@dataclass(frozen=True)
class LoadedCheckpoint:
    path: Path  # the algorithm checkpoint directory
    module: Any  # a MemoryRLModule, in eval() mode
    config: ExperimentConfig | None  # the training config, when the checkpoint was written by rllib-shm
    meta: dict  # rllib_shm.json (iteration, env steps, MLflow run), or {}


def write_checkpoint(algo, path: Path, config: ExperimentConfig, iteration: int, env_steps: int,
                     mlflow: dict | None = None) -> Path:
    """``algo.save_to_path`` plus ``rllib_shm.json`` (config, progress, MLflow run) beside it, built in
    a scratch directory and renamed to the new directory ``path`` when complete."""
    path = Path(path)
    module_class = type(algo.get_module())
    meta = {"config": config.to_dict(), "iteration": iteration, "env_steps": env_steps,
            "module_class": f"{module_class.__module__}.{module_class.__qualname__}"}
    if mlflow:
        meta["mlflow"] = mlflow
    with scratch_directory(path.parent, path.name) as scratch:
        algo.save_to_path(str(scratch))
        write_json(scratch / CHECKPOINT_META, meta)
        publish_directory(scratch, path)
    return path


def trial_checkpoint_algo(path: Path) -> Path:
    """A study trial's Tune checkpoint ``<trial>/checkpoint_<n>`` holds the algorithm checkpoint in
    ``algo/``: that directory; any other ``path`` unchanged."""
    if path.name.startswith("checkpoint_") and not (path / MODULE_SUBDIR).is_dir() and (path / "algo").is_dir():
        return path / "algo"
    return path


def module_dir(path: Path) -> Path:
    """The RLModule directory inside an algorithm checkpoint (or ``path`` itself if it is one)."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"checkpoint path {str(path)!r} does not exist or is not a directory")
    for candidate in (path / MODULE_SUBDIR, path):
        if (candidate / "class_and_ctor_args.pkl").is_file() and any(candidate.glob("module_state*")):
            return candidate
    raise ValueError(
        f"{str(path)!r} is not an RLlib checkpoint: expected an RLModule under {str(path / MODULE_SUBDIR)!r} "
        "(written by `rllib-shm train` / `Algorithm.save_to_path`)"
    )


def read_meta(path: Path) -> tuple[dict, ExperimentConfig | None]:
    """``rllib_shm.json`` beside ``learner_group/`` (or in a bare module directory) and the training
    config it holds: ({}, None) when absent; ValueError naming the file when it is unreadable."""
    meta_path = Path(path) / CHECKPOINT_META
    if not meta_path.is_file():
        return {}, None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = ExperimentConfig.from_dict(meta["config"]) if meta.get("config") is not None else None
    except UnicodeDecodeError as error:
        raise ValueError(f"{str(meta_path)!r} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (json.JSONDecodeError, TypeError, AttributeError, KeyError) as error:
        raise ValueError(f"{str(meta_path)!r} is not valid checkpoint metadata: {error}") from None
    except ValueError as error:
        raise ValueError(f"{str(meta_path)!r} holds an invalid config: {error}") from None
    return meta, config


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Load the policy module and the training config; ValueError for anything that is not a
    checkpoint of this project's ``MemoryRLModule`` (checked before the weights are read), e.g. one
    of RLlib's built-in LSTM (``module.rllib_lstm``), which is for comparisons only."""
    from rllib_shm.rllib.module import MemoryRLModule

    path = trial_checkpoint_algo(Path(path))
    directory = module_dir(path)
    meta, config = read_meta(path)
    if config is not None and config.module.rllib_lstm:
        raise ValueError(f"checkpoint {str(path)!r} was trained with RLlib's built-in LSTM (module.rllib_lstm: true), "
                         "a baseline for comparisons only: evaluate, export and memory drawings need the project's "
                         "MemoryRLModule; compare its training runs in MLflow or a study's report instead")
    try:
        with open(directory / "class_and_ctor_args.pkl", "rb") as f:
            ctor = pickle.load(f)["class"]
    except (ImportError, AttributeError) as error:
        raise ValueError(f"the module class of checkpoint {str(path)!r} cannot be imported ({error}); "
                         "install the package that defines it") from None
    except (pickle.UnpicklingError, KeyError, EOFError) as error:
        raise ValueError(f"checkpoint {str(path)!r} has an unreadable module description: {error}") from None
    if not (isinstance(ctor, type) and issubclass(ctor, MemoryRLModule)):
        raise ValueError(f"checkpoint {str(path)!r} holds a {getattr(ctor, '__qualname__', ctor)!r} module, "
                         "not rllib_shm's MemoryRLModule")
    weights = sorted(p.name for p in directory.glob("module_state*"))
    try:
        module = ctor.from_checkpoint(str(directory.resolve()))
    except (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError, KeyError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"checkpoint {str(path)!r}: the module weights ({', '.join(weights)} in "
                         f"{str(directory)!r}) cannot be read: {message}") from None
    if not isinstance(module, MemoryRLModule):
        raise ValueError(f"loading {str(path)!r} gave a {type(module).__name__}, not a MemoryRLModule")
    bad = nonfinite_weights(module)
    if bad:
        raise ValueError(f"checkpoint {str(path)!r} has non-finite weights in {len(bad)} tensor(s), first "
                         f"{bad[0]!r}: the run that wrote it diverged; use an earlier checkpoint")
    module.eval()
    return LoadedCheckpoint(path, module, config, meta)
