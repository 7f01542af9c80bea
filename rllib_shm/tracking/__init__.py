"""MLflow tracking shared by runs and studies: where runs go, the experiment they go to, what is
logged (a curated parameter set, not RLlib's ~300 keys), metric names MLflow accepts, and the
provenance every run records.

A local store is a SQLite file (MLflow ≥ 3.13 refuses the plain file store); the artifacts of an
experiment created here lie beside it, in ``<dir of mlflow.db>/mlartifacts``, wherever the command
ran. Experiments are marked as model-training ones (``mlflow.experimentKind``); which view MLflow
3.17's UI opens is decided by the link (``tracking/ui.py``). Runs are named by ``run_names.py``."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import platform
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from rllib_shm.config import ExperimentConfig
from rllib_shm.config.paths import get_path
from rllib_shm.config.sac_section import PPO_ONLY_FIELDS

_INVALID = re.compile(r"[^A-Za-z0-9_\-. :/]")
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
STUDY_TAG = "rllib_shm.study"  # on a study's parent and trial runs: the study's name
TRIAL_TAG = "rllib_shm.trial_id"  # on a trial run: Tune's trial id
OUTCOME_METRIC = "eval/outcome/"  # + an outcome's name (info["outcome"]): its share of an evaluation's episodes
#: on a trial run: its study's parent run id. Not MLflow's ``mlflow.parentRunId``: the UI folds nested runs
#: under their parent's row (collapsed) and leaves them out of its charts, hiding the trials
STUDY_RUN_TAG = "rllib_shm.study_run"
SEARCHED_TAG = "rllib_shm.searched"  # on a trial run: the searched paths, comma-separated (params by those names)
NOTE_TAG = "mlflow.note.content"  # a run's description in MLflow's UI (markdown)


#: `rllib-shm train` runs (and evaluations of unknown runs) without run.mlflow_experiment
DEFAULT_EXPERIMENT = "rllib-shm"


def experiment_name(config: ExperimentConfig, study: str | None = None) -> str:
    """Where a run goes: ``run.mlflow_experiment`` when set, else its study's own experiment (named
    by ``tune.name``), else ``rllib-shm``."""
    return config.run.mlflow_experiment or study or DEFAULT_EXPERIMENT


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


def check_tracking_uri(uri: str, *, create: bool = True, write: bool = True) -> None:
    """Fail fast (ValueError naming the URI) when the store cannot be reached, created or written.

    A local SQLite store is inspected before MLflow opens it (MLflow writes its tables into any
    database it opens): a file that is not an MLflow store is refused untouched; a missing one is
    refused with ``create=False`` (``evaluate`` and ``report`` never create a store). With
    ``create`` (``train``, ``tune``), inspection and first opening happen under a file lock beside
    the database (``locking.store_creation_lock``), since MLflow's schema migration cannot run twice
    at once. With ``write`` (implied by ``create``), the file and its directory must be writable
    (SQLite writes a journal beside the database), checked at once rather than after MLflow's ~2
    minutes of connection retries or after the work that was to be logged."""
    import mlflow

    if uri.startswith("sqlite:///"):
        database = Path(uri[len("sqlite:///"):])
        if create:
            from rllib_shm.locking import store_creation_lock

            ancestor = database.parent
            while not ancestor.exists() and ancestor != ancestor.parent:
                ancestor = ancestor.parent
            if not (ancestor.is_dir() and _writable(ancestor)):
                raise ValueError(f"MLflow store {uri!r} is read-only: {str(ancestor)!r} is not a writable directory")
            if database.is_file() and (tables := sqlite_tables(uri, database)) and "experiments" not in tables:
                check_sqlite_store(uri, database, create=True, write=True)  # refused before the lock file exists
            database.parent.mkdir(parents=True, exist_ok=True)
            with store_creation_lock(database):
                check_sqlite_store(uri, database, create=True, write=True)
                _reach(uri, mlflow)
            return
        check_sqlite_store(uri, database, create=False, write=write)
    elif uri.startswith(("http://", "https://")):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    _reach(uri, mlflow)


def _reach(uri: str, mlflow) -> None:
    try:
        mlflow.MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as error:  # noqa: BLE001 - any failure means "unusable"
        raise ValueError(f"MLflow tracking URI {uri!r} is not reachable: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}") from None


def check_sqlite_store(uri: str, database: Path, *, create: bool, write: bool) -> bool:
    """The checks of ``check_tracking_uri`` on a local SQLite file, made without writing anything
    (the file is opened read-only); True for a store still to be created (no file, or no tables)."""
    if database.is_dir():
        raise ValueError(f"MLflow store {uri!r}: {str(database)!r} is a directory, expected a SQLite file "
                         "(e.g. sqlite:///<dir>/mlflow.db)")
    if not database.exists():
        if not create:
            raise ValueError(f"MLflow store {uri!r} does not exist (evaluate and report never create a store: "
                             "pass the --mlflow-uri the runs were logged to)")
        return True
    tables = sqlite_tables(uri, database)
    if tables and not MLFLOW_TABLES <= tables:
        raise ValueError(f"MLflow store {uri!r}: {str(database)!r} is a SQLite database but not an MLflow store "
                         f"(its tables: {sorted(tables)[:6]}); nothing was written to it")
    if write and not (_writable(database.parent) and os.access(database, os.W_OK) and _appendable(database)):
        raise ValueError(f"MLflow store {uri!r} is read-only (the file {str(database)!r} or its directory); "
                         "nothing can be logged to it")
    if not tables and not create:
        raise ValueError(f"MLflow store {uri!r}: {str(database)!r} is an empty database, not an MLflow store "
                         "(evaluate and report never create a store)")
    return not tables


MLFLOW_TABLES = frozenset({"alembic_version", "experiments", "runs"})


def sqlite_tables(uri: str, database: Path) -> set[str]:
    """The table names of SQLite file ``database``, read through a read-only connection."""
    import sqlite3

    try:
        with open(database, "rb") as file:
            if not file.read(16):
                return set()  # an empty file: a database with no tables
        with contextlib.closing(sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True,
                                                timeout=30)) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except (OSError, sqlite3.Error) as error:
        raise ValueError(f"MLflow store {uri!r}: {str(database)!r} is not a readable SQLite database "
                         f"({error}); nothing was written to it") from None


def _writable(directory: Path) -> bool:
    """By creating (and at once removing) an empty directory: permission bits say little to root."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".rllib-shm-probe-", dir=directory))
    except OSError:
        return False
    return True


def _appendable(path: Path) -> bool:
    """Opened for appending (nothing written, its contents and modification time unchanged)."""
    try:
        with open(path, "ab"):
            return True
    except OSError:
        return False


def local_artifact_root(uri: str) -> str | None:
    """``file://<dir of the SQLite file>/mlartifacts`` for a local store; None (the server's
    default) for any other URI."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
    return None


def find_study_parent(client, study: str, experiment_ids: Iterable[str] | None = None):
    """The parent run of ``study`` (tag ``rllib_shm.study``, kind ``study``) in ``experiment_ids`` (default:
    every experiment), or None; of several (a study run again fresh after its Tune store was removed),
    the newest."""
    ids = list(experiment_ids) if experiment_ids is not None else [
        e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(ids, f"tags.`{STUDY_TAG}` = '{study}' and tags.kind = 'study'", max_results=1,
                               order_by=["attributes.start_time DESC"]) if ids else []
    return found[0] if found else None


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


#: the curated parameters every training run logs, by config path (the YAML keys): one name each
PARAMS = ("env.id", "module.memory.kind", "module.memory.mem_size", "module.rllib_lstm", "module.encoder",
          "module.encoder_hiddens", "module.memory_output", "module.head_hiddens", "module.shared_trunk",
          "module.positional_embedding", "module.max_seq_len", "algo.name", "algo.lr", "algo.gamma", "algo.lambda_",
          "algo.clip_param", "algo.entropy_coeff", "algo.vf_loss_coeff", "algo.num_epochs", "algo.train_batch_size",
          "algo.minibatch_size", "algo.num_env_runners", "algo.num_envs_per_env_runner", "run.seed", "run.stop_iters")
#: logged with ``algo.name: sac`` in place of the PPO-only fields (``config/sac_section.PPO_ONLY_FIELDS``)
SAC_PARAMS = ("algo.sac.updates_per_step", "algo.sac.batch_episodes", "algo.sac.warmup_episodes",
              "algo.sac.actor_lr", "algo.sac.critic_lr", "algo.sac.alpha", "algo.sac.tau", "algo.sac.replay",
              "algo.sac.theta_replay", "algo.sac.replay_capacity", "algo.sac.critic_memory")
#: logged only for that memory kind (or when non-empty, for ``env.config``)
KIND_PARAMS = {"ffm": ("module.memory.context_size",),
               "shm": ("module.memory.num_thetas", "module.memory.theta_mode", "module.memory.calibration",
                       "module.memory.eval_theta", "module.memory.key_query", "module.memory.recency")}
VARIANT_PARAM = "variant"  # a study with ``variants``: the variant's name (its overrides are logged by path)
#: the names runs logged before the parameters were named by config path → today's name (reports read both)
LEGACY_PARAMS = {"env": "env.id", "env_config": "env.config", "memory": "module.memory.kind",
                 "memory.H": "module.memory.mem_size", "rllib_lstm": "module.rllib_lstm",
                 "memory_output": "module.memory_output", "head_hiddens": "module.head_hiddens",
                 "shared_trunk": "module.shared_trunk", "positional_embedding": "module.positional_embedding",
                 "max_seq_len": "module.max_seq_len", "lr": "algo.lr", "gamma": "algo.gamma", "lambda": "algo.lambda_",
                 "clip_param": "algo.clip_param", "entropy_coeff": "algo.entropy_coeff",
                 "vf_loss_coeff": "algo.vf_loss_coeff", "num_epochs": "algo.num_epochs",
                 "train_batch_size": "algo.train_batch_size", "minibatch_size": "algo.minibatch_size",
                 "seed": "run.seed", "stop_iters": "run.stop_iters", "ffm.C": "module.memory.context_size",
                 "shm.L": "module.memory.num_thetas", "shm.theta_mode": "module.memory.theta_mode",
                 "shm.calibration": "module.memory.calibration", "shm.eval_theta": "module.memory.eval_theta"}


def _leaves(value: Any, prefix: str) -> list[str]:
    """The dotted paths of the plain values in ``value`` (a mapping is walked, anything else is a leaf)."""
    if isinstance(value, Mapping) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, f"{prefix}.{key}")]
    return [prefix]


def curated_params(config: ExperimentConfig, searched: Mapping[str, Any] | None = None,
                   extra_paths: tuple[str, ...] = ()) -> dict[str, Any]:
    """The parameters worth comparing across runs, each once, named by its config path (``PARAMS``,
    ``KIND_PARAMS``, ``env.config`` when set), with the values of ``config``; plus, for a study's
    trial, every plain value under its ``searched`` paths (a searched ``module.memory`` mapping logs
    its leaves), the ``variant`` name and ``extra_paths`` (the variants' overrides).

    >>> config = ExperimentConfig.from_dict({"algo": {"lr": 1e-3}, "module": {"memory": {"mem_size": 32}}})
    >>> params = curated_params(config, {"algo.lr": 1e-3, "variant": "baseline"}, ("algo.gamma",))
    >>> params["algo.lr"], params["module.memory.mem_size"], params["variant"], params["algo.gamma"]
    (0.001, 32, 'baseline', 0.99)
    """
    data = config.to_dict()
    paths = [*PARAMS, *KIND_PARAMS.get(config.module.memory.kind, ())]
    if config.algo.name == "sac":  # SAC's own settings instead of the PPO-only ones
        paths = [path for path in paths if path.removeprefix("algo.") not in PPO_ONLY_FIELDS] + list(SAC_PARAMS)
        if config.algo.sac.replay == "chunks":
            paths += ["algo.sac.chunk_length", "algo.sac.burn_in"]
    if config.env.config:
        paths.append("env.config")
    if config.algo.whole_episodes:  # BPTT over whole episodes (module.max_seq_len is then replaced per env)
        paths.append("algo.whole_episodes")
    if config.run.stop_env_steps is not None:
        paths.append("run.stop_env_steps")
    module = config.module
    if module.init != "torch" or not module.encoder_norm_affine or module.head_linear:  # official-agent switches
        paths += ["module.init", "module.encoder_norm_affine", "module.head_linear", "algo.grad_clip"]
    params: dict[str, Any] = {}
    for path, value in (searched or {}).items():
        if path == VARIANT_PARAM:
            params[VARIANT_PARAM] = value
        else:
            paths += _leaves(value, path)
    for path in dict.fromkeys([*paths, *extra_paths]):
        value = get_path(data, path, None)
        params[path] = str(value) if isinstance(value, list | dict) else value
    return params


def run_tags(config: ExperimentConfig) -> dict[str, str]:
    """Tags for the MLflow UI's filters and compare view.

    ``memory`` is the module's memory (the actor's under SAC); ``algorithm`` is ``algo.name`` in
    capitals (PPO or SAC; SAC-Discrete is SAC on discrete actions). A SAC critic with a memory of
    its own (``algo.sac.critic_memory``) adds ``critic_memory`` (and its θ mode for SHM), so that
    the arms of a critic-memory comparison, whose actors are alike, differ in the filters too.
    """
    memory = config.module.memory
    kind = "rllib_lstm" if config.module.rllib_lstm else memory.kind  # RLlib's built-in LSTM stands apart
    tags = {"memory": kind, "env": config.env.id, "algorithm": config.algo.name.upper(), "run_name": config.run.name}
    if memory.kind == "shm":
        tags.update({"theta_mode": memory.theta_mode, "calibration": memory.calibration})
    critic = config.algo.sac.critic_memory if config.algo.name == "sac" else None
    if critic is not None:
        tags["critic_memory"] = critic.kind
        if critic.kind == "shm":
            tags["critic_theta_mode"] = critic.theta_mode
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
    root = Path(__file__).resolve().parents[2]  # the checkout holding rllib_shm/
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return revision + ("-dirty" if dirty else "")
