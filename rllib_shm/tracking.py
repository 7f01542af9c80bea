"""MLflow tracking shared by runs and studies: where runs go, the experiment they go to, what is
logged (a curated parameter set, not RLlib's ~300 keys), metric names MLflow accepts, and the
provenance every run records.

A local store is a SQLite file (MLflow ≥ 3.13 refuses the plain file store); the artifacts of an
experiment created here lie beside it, in ``<dir of mlflow.db>/mlartifacts``, wherever the command
ran. Experiments are marked as model-training ones (``mlflow.experimentKind``), so ``mlflow ui``
opens on their runs rather than on the GenAI traces view."""

from __future__ import annotations

import functools
import math
import os
import platform
import re
import subprocess
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from rllib_shm.config import ExperimentConfig

_INVALID = re.compile(r"[^A-Za-z0-9_\-. :/]")
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
STUDY_TAG = "rllib_shm.study"  # on a study's parent and trial runs: the study's name
TRIAL_TAG = "rllib_shm.trial_id"  # on a trial run: Tune's trial id


def trial_run_filter(study: str, trial_id: str) -> str:
    """The MLflow ``search_runs`` filter for the run of a study's trial."""
    return f"tags.`{STUDY_TAG}` = '{study}' and tags.`{TRIAL_TAG}` = '{trial_id}'"
MODEL_TRAINING = "custom_model_development"  # MLflow UI: "Machine learning" (vs "GenAI apps & agents")


def resolve_tracking_uri(cli_uri: str | None, config: ExperimentConfig, output_dir: Path) -> str:
    """``--mlflow-uri`` > ``$MLFLOW_TRACKING_URI`` > ``run.mlflow_uri`` > a local SQLite store
    ``sqlite:///<abs output_dir>/mlflow.db`` (MLflow ≥ 3.13 refuses the plain file store)."""
    uri = cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or config.run.mlflow_uri
    if uri:
        return uri
    return f"sqlite:///{output_dir.resolve() / 'mlflow.db'}"


def check_tracking_uri(uri: str) -> None:
    """Fail fast (ValueError naming the URI) when the store cannot be reached or created."""
    import mlflow

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as error:  # noqa: BLE001 - any failure means "unusable"
        raise ValueError(f"MLflow tracking URI {uri!r} is not reachable: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}") from None


def local_artifact_root(uri: str) -> str | None:
    """``file://<dir of the SQLite file>/mlartifacts`` for a local store; None (the server's
    default) for any other URI."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return None


def experiment_id(client, name: str) -> str:
    """The id of MLflow experiment ``name``: found, or created (artifacts beside a local store,
    marked as model training). An existing experiment without a kind gets the model-training one."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=local_artifact_root(client.tracking_uri),
                                            tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})
        except MlflowException:  # created meanwhile by another process
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    return experiment.experiment_id


def log_params(client, run_id: str, params: Mapping[str, Any]) -> None:
    """Every parameter in one request, names made acceptable to MLflow."""
    from mlflow.entities import Param

    client.log_batch(run_id, params=[Param(metric_name(k), str(v)) for k, v in params.items()])


def log_metrics(client, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
    """The finite numeric values of ``metrics`` at ``step``, in one request (NaN, inf and
    non-numbers are skipped: MLflow charts cannot show them)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = []
    for key, value in metrics.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            batch.append(Metric(metric_name(key), value, now, step))
    if batch:
        client.log_batch(run_id, metrics=batch)


def metric_name(name: str) -> str:
    """A metric/param name MLflow accepts (alphanumerics, _ - . space : /)."""
    return _INVALID.sub("_", name)


def curated_params(config: ExperimentConfig) -> dict[str, Any]:
    """The parameters worth comparing across runs, with readable names."""
    memory, module, algo, run = config.module.memory, config.module, config.algo, config.run
    params = {
        "env": config.env.id,
        "memory": memory.kind,
        "memory.H": memory.mem_size,
        "rllib_lstm": module.rllib_lstm,  # True: RLlib's built-in LSTM module, not the project's
        "encoder": f"{module.encoder} {list(module.encoder_hiddens)}",
        "memory_output": module.memory_output,
        "head_hiddens": str(list(module.head_hiddens)),
        "shared_trunk": module.shared_trunk,
        "positional_embedding": module.positional_embedding,
        "max_seq_len": module.max_seq_len,
        "algorithm": algo.name,
        "gamma": algo.gamma,
        **(sac_params(algo.sac) if algo.name == "sac" else {
            "lr": algo.lr,
            "lambda": algo.lambda_,
            "clip_param": algo.clip_param,
            "entropy_coeff": algo.entropy_coeff,
            "vf_loss_coeff": algo.vf_loss_coeff,
            "num_epochs": algo.num_epochs,
            "train_batch_size": algo.train_batch_size,
            "minibatch_size": algo.minibatch_size,
        }),
        "num_envs": max(algo.num_env_runners, 1) * algo.num_envs_per_env_runner,
        "seed": run.seed,
        "stop_iters": run.stop_iters,
    }
    if config.env.config:
        params["env_config"] = str(config.env.config)
    if memory.kind == "ffm":
        params["ffm.C"] = memory.context_size
    if memory.kind == "shm":
        params.update({"shm.L": memory.num_thetas, "shm.theta_mode": memory.theta_mode,
                       "shm.calibration": memory.calibration, "shm.eval_theta": memory.eval_theta})
    return params


def sac_params(sac) -> dict[str, Any]:
    """SAC's curated parameters (``algo.sac``), under ``sac.`` names."""
    critic = sac.critic_memory
    return {
        "sac.updates_per_step": sac.updates_per_step, "sac.batch_episodes": sac.batch_episodes,
        "sac.warmup_episodes": sac.warmup_episodes, "sac.actor_lr": sac.actor_lr, "sac.critic_lr": sac.critic_lr,
        "sac.alpha": "auto" if sac.alpha is None else sac.alpha, "sac.tau": sac.tau,
        "sac.replay": sac.replay if sac.replay == "episodes" else f"chunks {sac.chunk_length}+{sac.burn_in} burn-in",
        "sac.theta_replay": sac.theta_replay, "sac.replay_capacity": sac.replay_capacity,
        "sac.critic_memory": "actor's" if critic is None else f"{critic.kind} H={critic.mem_size}",
    }


def run_tags(config: ExperimentConfig) -> dict[str, str]:
    """Tags for the MLflow UI's filters and compare view."""
    memory = config.module.memory
    kind = "rllib_lstm" if config.module.rllib_lstm else memory.kind  # RLlib's built-in LSTM stands apart
    tags = {"memory": kind, "env": config.env.id, "algorithm": "PPO", "run_name": config.run.name}
    if memory.kind == "shm":
        tags.update({"theta_mode": memory.theta_mode, "calibration": memory.calibration})
    return tags


@functools.cache
def provenance() -> dict[str, str]:
    """Versions and git revision, recorded with every run (looked up once per process)."""
    info = {"python": platform.python_version()}
    for package in ("rllib-shm", "ray", "torch", "gymnasium", "popgym", "minigrid", "mlflow"):
        try:
            info[f"version.{package}"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[f"version.{package}"] = "not installed"
    info["git_revision"] = git_revision()
    return info


def git_revision() -> str:
    """``git rev-parse HEAD`` of the project checkout (+ "-dirty"), or "unknown"."""
    root = Path(__file__).resolve().parents[1]  # the checkout holding rllib_shm/
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return revision + ("-dirty" if dirty else "")
