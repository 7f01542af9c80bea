"""Run a study: Ray Tune ``Tuner`` over the project's trainable, ``OptunaSearch`` (as
``durable_search.DurableOptunaSearch``) with a seed and a durable study, optional ASHA,
``FailureConfig`` retries, checkpoints kept by score, MLflow parent/child runs, a leaderboard and a
learning-curve plot. ``resume=True`` continues a study whose driver died (``Tuner.restore``):
finished trials are kept, unfinished ones resume from their checkpoints, and the Optuna study and
MLflow runs are found again.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from rllib_shm.files import write_text
from rllib_shm.ray_session import check_ray_address, ensure_ray
from rllib_shm.runs.outputs import check_new_files_in
from rllib_shm.studies.leaderboard import format_leaderboard, leaderboard, log_study_results
from rllib_shm.studies.search_space import VARIANTS, to_optuna, trial_config
from rllib_shm.studies.study import Study, TuneSection, first_config, grid_values
from rllib_shm.studies.trainable import LAST
from rllib_shm.tracking import NOTE_TAG, check_tracking_uri, experiment_name, resolve_tracking_uri
from rllib_shm.tracking.ui import where_to_look


@dataclass(frozen=True)
class StudyResult:
    experiment_dir: str
    leaderboard: list[dict]
    best_checkpoint: str | None
    tracking_uri: str
    parent_run_id: str


def trial_dirname(trial) -> str:
    """Short trial directory names (Tune's default embeds the whole config)."""
    return f"trial_{trial.trial_id}"


def tracking_uri_for(study: Study, config, cli_uri: str | None) -> str:
    """As for ``train`` (``resolve_tracking_uri``), with the local default next to the Tune storage."""
    if "://" in study.tune.storage_path and not (cli_uri or os.environ.get("MLFLOW_TRACKING_URI")
                                                 or config.run.mlflow_uri):
        raise ValueError("an MLflow tracking URI (--mlflow-uri or MLFLOW_TRACKING_URI) is required when "
                         "tune.storage_path is remote")
    return resolve_tracking_uri(cli_uri, config, Path(study.tune.storage_path))


def candidate_configs(study: Study) -> list:
    """The configs at every combination of the searched paths' candidate values (bounds, or every
    choice), the first trial's first: the largest memory a study can ask for is among them."""
    paths = list(study.space)
    combos = itertools.product(*(study.space[path][1] for path in paths))
    return [trial_config(study.base, dict(zip(paths, values, strict=True))) for values in combos]


def run_study(study: Study, *, resume: bool = False, mlflow_uri: str | None = None,
              log: Callable[[str], None] = print) -> StudyResult | None:
    """Run (or with ``resume`` continue) ``study`` as its one driver; None when ``resume`` finds the study
    finished already (said in one line; nothing is written).

    A local study is locked while its driver runs (``locking.DriverLock``, ``<storage>/<name>.driver.lock``):
    a second driver, fresh or resumed, is refused (``LockHeld``, exit 2) naming the running one, before
    it opens any MLflow run. So every run of the study still RUNNING when the driver ends belongs to this
    driver, or to a dead one whose trials it resumed: those are the runs it closes. The lock is taken
    before anything reads the study's saved state. Remote storage (``s3://``, ``gs://``) has no lock:
    a one-line warning says so."""
    from rllib_shm.locking import DriverLock

    settings = study.tune
    experiment_dir = settings.experiment_dir()
    local = "://" not in experiment_dir
    if not local:  # no lock (the warning comes once every check has passed: _run_study)
        return _resumable(study, resume, mlflow_uri, log)
    check_new_files_in(Path(settings.storage_path).resolve(), (), "tune.storage_path (--storage)")
    # the lock first: a refused driver reads and writes nothing of the study (its Tune state is being written)
    with DriverLock(Path(settings.storage_path).resolve(), settings.name) as lock:
        lock.acquire(f"study {settings.name!r}", log)
        return _resumable(study, resume, mlflow_uri, log)


def _resumable(study: Study, resume: bool, mlflow_uri: str | None, log: Callable[[str], None]
               ) -> StudyResult | None:
    """``run_study`` once the driver holds the study's lock (or has none to take): ``--resume`` of a study
    that is not there is refused, of a finished one says so (None), and otherwise the study runs."""
    from ray import tune

    settings = study.tune
    experiment_dir = settings.experiment_dir()
    if resume and not tune.Tuner.can_restore(experiment_dir):
        raise ValueError(f"--resume: there is no study to resume at {experiment_dir}")
    if resume and "://" not in experiment_dir and (done := finished_trials(Path(experiment_dir))) is not None:
        log(f"study {settings.name} has finished already ({done}): nothing to resume, nothing written; "
            f"see `rllib-shm report {settings.name}`")
        return None
    return _run_study(study, resume, mlflow_uri, log)


def finished_trials(experiment_dir: Path) -> str | None:
    """"<n> of <n> trials ended" when every trial of the study at ``experiment_dir`` ended for good
    (``saved_ended``; as many as its ``study.yaml`` asks for), read from Tune's saved experiment state
    without writing; None while any is unfinished (or the state cannot be read)."""
    try:
        saved = yaml.safe_load((experiment_dir / "study.yaml").read_text()).get("tune") or {}
        num_samples = int(saved.get("num_samples", TuneSection.num_samples))
    except Exception:  # noqa: BLE001 - an unreadable study is left to Tune's restore to report
        return None
    ended = saved_ended(str(experiment_dir), failed=True)
    if ended is None or len(ended) < num_samples:
        return None
    return f"{len(ended)} of {num_samples} trials ended"


def saved_ended(experiment_dir: str, failed: bool = False) -> set[str] | None:
    """The ids of the trials that Tune's saved experiment state at ``experiment_dir`` (read, not written)
    shows ended for good, which ``--resume`` keeps as they are (with ``failed``, also the failed ones,
    which ``--resume`` runs again); None when it cannot be read.

    A trial ended for good if Tune saved it TERMINATED, unless its last report says it had iterations
    left (``_final``). Interrupted trials are saved RUNNING (Tune's last snapshot precedes its stopping
    them), and ``--resume`` continues them.

    Tune's saved ``done`` is no test: when a function trainable returns, Tune sets ``done`` on the
    trial's last result in place (``TuneController._process_trial_result``); that does not invalidate
    the JSON of the trial's run metadata cached by an earlier snapshot, so a finished trial is often
    saved TERMINATED with ``done: False``. Counting ``done`` made a ``--resume`` of a finished study
    restore it and return at once with "interrupted with N of M trials unfinished" (exit 130)."""
    from ray.tune import ExperimentAnalysis

    try:
        trials = ExperimentAnalysis(experiment_dir).trials
    except Exception:  # noqa: BLE001 - an unreadable state is left to Tune's restore to report
        return None
    return {trial.trial_id for trial in trials if (failed and trial.status == "ERROR")
            or (trial.status == "TERMINATED" and _final(trial.last_result or {}))}


def _final(last_result: dict) -> bool:
    """A last result that does not say its trial had iterations left: the trainable's ``LAST`` (absent in
    studies begun before it), or ``done`` (set, and saved, when a scheduler such as ASHA stops a trial)."""
    return last_result.get(LAST, True) is True or last_result.get("done") is True


def _run_study(study: Study, resume: bool, mlflow_uri: str | None, log: Callable[[str], None]) -> StudyResult:
    """``run_study`` once the driver holds the study's lock."""
    from rllib_shm.interrupts import SignalGuard
    from rllib_shm.runs.preflight import check_memory_all, check_success_reported, preflight

    settings = study.tune
    experiment_dir = settings.experiment_dir()
    local = "://" not in experiment_dir
    # --- every check before anything is written --------------------------------------------
    if not resume and local and Path(experiment_dir).exists():
        raise ValueError(f"a study already exists at {experiment_dir}: pass --resume to continue it, "
                         "or choose another tune.name")
    first = first_config(study)
    uri = tracking_uri_for(study, first, mlflow_uri)
    optuna_url = settings.optuna_storage()
    preflight(first)
    candidates = candidate_configs(study)
    check_memory_all(candidates, copies=settings.max_concurrent)  # every combination, all at once
    check_success_reported(candidates)  # run.stop_success: every searched env reports info["success"]
    check_ray_address()  # a stale RAY_ADDRESS is refused before the store is created
    check_tracking_uri(uri)
    if not local:
        log(f"warning: study {settings.name!r} is on remote storage ({experiment_dir}), which is not locked: "
            "run one driver at a time for it yourself (a second driver or --resume is not refused)")

    started_ray = ensure_ray()  # a Ray this call started is stopped when the study ends
    with SignalGuard(sigterm_as_sigint=True) as guard:  # SIGTERM: Tune's graceful stop, as Ctrl-C
        try:
            return _drive(study, resume, first, uri, optuna_url, guard, log)
        finally:
            if started_ray:
                import ray

                ray.shutdown()


def _drive(study: Study, resume: bool, first, uri: str, optuna_url: str, guard, log: Callable[[str], None]
           ) -> StudyResult:
    """The study's parent run, ``Tuner.fit`` and the results; every run this driver leaves is closed
    (KILLED on a signal, FAILED on an error) before any slow cleanup."""
    from ray import tune

    from rllib_shm.config.sac import build_algorithm_config
    from rllib_shm.studies.mlflow_runs import StudyTracker
    from rllib_shm.studies.progress import StudyProgress
    from rllib_shm.studies.trainable import train_trial

    settings = study.tune
    experiment_dir = settings.experiment_dir()
    local = "://" not in experiment_dir
    algorithm = build_algorithm_config(first)
    resources = algorithm.algo_class.default_resource_request(algorithm)
    trainable = tune.with_resources(tune.with_parameters(train_trial, base=study.base, space=study.space),
                                    resources=resources)
    tracker = StudyTracker(uri, experiment_name(first, settings.name), settings.name, study.base, study.space)
    space_text = {path: {kind: args} for path, (kind, args) in study.space.items()}
    try:  # from here on, a study that dies leaves no MLflow run RUNNING
        parent = tracker.ensure_parent(
            params={"num_samples": settings.num_samples, "metric": settings.metric, "seed": settings.seed,
                    "scheduler": settings.scheduler, **{f"space.{k}": str(v) for k, v in space_text.items()},
                    **{f"variants.{k}": str(v) for k, v in study.base.get(VARIANTS, {}).items()}},
            tags={"env": first.env.id, "algorithm": first.algo.name.upper(), NOTE_TAG: study_note(study)},
            fresh=not resume,
        )
        experiment = tracker.client.get_experiment(tracker.experiment_id())
        if NOTE_TAG not in experiment.tags:  # the experiments list's "Description" (kept once written)
            tracker.client.set_experiment_tag(experiment.experiment_id, NOTE_TAG, study_note(study).split("\n")[0])
        ended_before: set[str] = set()
        if resume:
            log(f"resuming study {settings.name} at {experiment_dir}")
            ended_before = saved_ended(experiment_dir) or ended_before  # (read before Tune writes it again)
            tuner = tune.Tuner.restore(experiment_dir, trainable=trainable, resume_errored=True)
        else:
            log_file = str(Path(experiment_dir) / "study.log") if local else None
            progress = StudyProgress(settings.name, settings.num_samples, study.space, settings.metric,
                                     settings.mode, log_file=log_file, base=study.base)
            tuner = _new_tuner(study, trainable, [tracker, progress], first.run.stop_iters, optuna_url)
        log(f"study {settings.name}: {settings.num_samples} trials, {settings.max_concurrent} at once; "
            f"Tune at {experiment_dir}; Optuna at {optuna_url}; MLflow parent run {parent} at {uri}")
        with no_tensorboard(enabled=not resume):
            results = tuner.fit()
        unfinished = settings.num_samples - ended_trials(results, ended_before)
        if unfinished > 0:  # Tune caught SIGINT (or our SIGTERM as SIGINT), saved its state and returned
            log(f"study {settings.name} interrupted with {unfinished} of {settings.num_samples} trials "
                f"unfinished; Tune saved its state: continue with `rllib-shm tune <study file> --resume`")
            raise guard.interrupted()
    except BaseException as error:
        with guard.final_state():
            tracker.close_open_runs("KILLED" if isinstance(error, KeyboardInterrupt) or guard.received
                                    else "FAILED")
        raise
    dropped = tracker.close_dropped_children() + close_dropped_optuna_trials(settings.name, optuna_url)
    if dropped:
        log(f"closed {len(dropped)} MLflow run(s) / Optuna trial(s) of trials that a killed driver had started "
            "and the resumed study ran again (marked FAILED)")
    board = leaderboard(results, study)
    best = board[0]["checkpoint"] if board else None
    log_study_results(tracker.client, tracker.parent_run_id, results, board, study, study_note(study))
    log(format_leaderboard(board, settings.metric))
    storage = "" if settings.storage_path == "results/tune" else f" --storage {settings.storage_path}"
    log(f"best checkpoint: {best}\nevaluate: rllib-shm evaluate {best}\n"
        f"report (tables and curves against env steps, by variant): rllib-shm report {settings.name}{storage}\n"
        + where_to_look(uri, tracker.experiment_id(), f"the trials of study {settings.name}",
                        best_first=settings.metric if settings.mode == "max" else None))
    return StudyResult(experiment_dir, board, best, uri, parent)


def study_note(study: Study) -> str:
    """The parent run's description (markdown): what the study searched, how, and where its report is."""
    settings = study.tune
    lines = [f"Study `{settings.name}`: {settings.num_samples} trials ({settings.sampler} sampler, seed "
             f"{settings.seed}), ranked by `{settings.metric}` ({settings.mode}).", "", "Searched:", ""]
    lines += [f"- `{path}`: {kind} {args}" for path, (kind, args) in study.space.items()]
    for name, overrides in study.base.get(VARIANTS, {}).items():
        lines.append(f"  - variant `{name}`: {overrides or 'the config as written'}")
    lines += ["", f"Trials are the child runs, named by what varies. Report: `rllib-shm report {settings.name}`."]
    return "\n".join(lines)


@contextlib.contextmanager
def no_tensorboard(enabled: bool = True):
    """Tune adds a TensorBoard logger to every run (and prints "To visualize your results with
    TensorBoard, run ..."), though tensorboard is not installed here: this turns Tune's default
    loggers off for the ``fit`` (``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS``), and ``_new_tuner`` passes
    the CSV and JSON loggers (``progress.csv``, ``result.json``) itself. A resumed study keeps Tune's
    defaults: one begun by an older version has no CSV / JSON loggers of its own."""
    key = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
    before = os.environ.get(key)
    if enabled:
        os.environ[key] = "1"
    try:
        yield
    finally:
        if enabled:
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before


def ended_trials(results, ended_before: set[str] = frozenset()) -> int:
    """Trials of a finished ``Tuner.fit`` that ended for good: failed ones, those whose last result Tune
    marked ``done`` in this ``fit`` (a stop criterion, the scheduler, or the trainable returning), and,
    for a resumed study, those its saved state showed ended already (``ended_before``: ``saved_ended``;
    Tune restores them as they were, and their saved last result may lack ``done``).

    Tune's own count is no test of an interrupted study: on SIGINT / SIGTERM it stops the running
    trials and sets them TERMINATED like finished ones (their saved state says RUNNING, so ``--resume``
    continues them); their last result is not ``done``."""
    return sum(1 for result in results
               if result.error is not None or (result.metrics or {}).get("done") is True
               or (result.metrics or {}).get("trial_id") in ended_before)


def close_dropped_optuna_trials(study_name: str, storage_url: str) -> list[int]:
    """After a finished ``fit``: mark the Optuna trials still RUNNING as FAIL (the numbers).

    A driver killed while a trial started leaves its Optuna trial RUNNING, and the restored
    experiment state does not know that trial. Left RUNNING until the resumed ``fit`` ends, it
    keeps its grid point from being counted as visited, so the grid sampler gives that point to
    the replacement trial; once every trial has ended, nothing may run any more."""
    import optuna

    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:  # no Optuna study (nothing was ever suggested)
        return []
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return [trial.number for trial in running]


def _new_tuner(study: Study, trainable, callbacks: list, stop_iters: int, optuna_url: str):
    """A fresh ``Tuner``: the study directory with ``study.yaml``, the seeded Optuna sampler on its
    durable storage, optional ASHA, retries, checkpoints kept by score, the project's callbacks."""
    import optuna
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
    from ray.tune.schedulers import ASHAScheduler

    from rllib_shm.studies.durable_search import DurableOptunaSearch

    settings = study.tune
    experiment_dir = settings.experiment_dir()
    local = "://" not in experiment_dir
    if local:
        Path(experiment_dir).mkdir(parents=True, exist_ok=False)
        write_text(Path(experiment_dir) / "study.yaml", yaml.safe_dump(study.raw, sort_keys=False))  # whole or absent
    if settings.sampler == "grid":
        sampler = optuna.samplers.GridSampler(grid_values(study.space), seed=settings.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=settings.seed)
    searcher = DurableOptunaSearch(space=to_optuna(study.space), metric=settings.metric, mode=settings.mode,
                                   sampler=sampler, study_name=settings.name,
                                   storage=optuna.storages.RDBStorage(optuna_url))
    scheduler = None
    if settings.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="iteration", metric=settings.metric, mode=settings.mode,
                                  grace_period=settings.grace_period, reduction_factor=settings.reduction_factor,
                                  max_t=stop_iters)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=settings.num_samples,
                                    max_concurrent_trials=settings.max_concurrent,
                                    trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=settings.name,
            storage_path=str(Path(settings.storage_path).resolve()) if local else settings.storage_path,
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=settings.keep_checkpoints,
                                                    checkpoint_score_attribute=settings.metric,
                                                    checkpoint_score_order=settings.mode),
            callbacks=[*callbacks, CSVLoggerCallback(), JsonLoggerCallback()],  # no TensorBoard (no_tensorboard)
            verbose=0,  # studies/progress.py prints a compact account instead
        ),
    )
