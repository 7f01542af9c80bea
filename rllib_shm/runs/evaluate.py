"""``evaluate``: load a checkpoint, run seeded episodes, report, draw the memory, log to MLflow.

The env is the training env with its training config, or ``env_id``; ``env_config`` kwargs are
merged over that config (``runs/evaluation_env.py``; e.g. ``subset=eval`` for held-out meta-RL
tasks) and recorded with the results. Everything that can be refused (the checkpoint, the env,
its kwargs and spaces, a memory with nothing to draw, the MLflow store) is checked before the
first episode runs.
Checkpoints are pickles: evaluate only checkpoints you trust.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rllib_shm.drawing import FILES as DRAWN_FILES
from rllib_shm.drawing import MAX_PANELS
from rllib_shm.files import claim_directory
from rllib_shm.interrupts import SignalGuard
from rllib_shm.runs.checkpoints import LoadedCheckpoint, load_checkpoint
from rllib_shm.runs.episodes import (
    EpisodeLog,
    check_spaces,
    run_episodes,
    summarize,
    summary_line,
    write_episode_steps,
    write_json,
)
from rllib_shm.runs.evaluation_env import (
    check_episodes,
    episode_tasks,
    evaluation_env_config,
    make_evaluation_env,
)
from rllib_shm.runs.outputs import check_new_file, check_new_files_in


def evaluate(
    checkpoint: Path,
    *,
    episodes: int | None = None,
    env_id: str | None = None,
    env_config: dict[str, Any] | None = None,
    seed: int = 0,
    explore: bool = False,
    output: Path | None = None,
    record_memory: Path | None = None,
    memory_steps: Sequence[int] | None = None,
    cue_steps: int | None = None,
    mlflow_uri: str | None = None,
    use_mlflow: bool = True,
    each_task: bool = False,
    record_episodes: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on its training env (or ``env_id``), with ``env_config`` kwargs merged
    over the training env config; returns the JSON payload. ``episodes``: default 20; ``each_task``:
    one episode per task of the env's task pool instead (meta-RL held-out evaluation);
    ``record_episodes``: a new ``.npz`` of every episode's observations, actions and rewards."""
    check_episodes(episodes, each_task, seed)
    check_new_file(output, "--output")
    if record_episodes is not None:
        if Path(record_episodes).suffix != ".npz":
            raise ValueError(f"--record-episodes {str(record_episodes)!r}: expected a file name ending in .npz")
        check_new_file(record_episodes, "--record-episodes")
        if output is not None and Path(record_episodes).resolve() == Path(output).resolve():
            raise ValueError(f"--record-episodes {str(record_episodes)!r} is also --output: give two files")
    check_new_files_in(record_memory, DRAWN_FILES, "--record-memory")
    if memory_steps is not None:  # the upper bound (T - 1) is known only once the episode has run
        if any(step < 0 for step in memory_steps) or not 1 <= len(set(memory_steps)) <= MAX_PANELS:
            raise ValueError(f"--memory-steps {list(memory_steps)}: expected 1 to {MAX_PANELS} distinct steps ≥ 0")
    if cue_steps is not None:  # its upper bound (T - 1) is known only once the episode has run
        if record_memory is None:
            raise ValueError(f"--cue-steps {cue_steps}: it marks the cue phase of the memory drawing; pass "
                             "--record-memory DIR too")
        if isinstance(cue_steps, bool) or not isinstance(cue_steps, int) or cue_steps < 1:
            raise ValueError(f"--cue-steps {cue_steps!r}: expected an integer ≥ 1 (steps 0..N-1 are the cue phase)")
    loaded = load_checkpoint(checkpoint)
    module = loaded.module
    if env_id is None and loaded.config is None:
        raise ValueError(f"{str(checkpoint)!r} does not say which env it was trained on: pass --env")
    env_id = env_id or loaded.config.env.id
    trained = (loaded.config.env.id, loaded.config.env.config) if loaded.config else (None, None)
    overrides = dict(env_config or {})
    env_config = evaluation_env_config(env_id, *trained, overrides)  # what the episodes run on
    env = make_evaluation_env(env_id, env_config, overrides)
    try:  # the env is closed whatever is refused next
        check_spaces(module, env)
        episodes, tasks = episode_tasks(env, env_id, episodes, each_task)
        if record_memory is not None and not module.has_memory_state:
            raise ValueError(f"--record-memory: the {module.memory_kind!r} memory has no state to draw")
        client, parent = _tracking(loaded, mlflow_uri, log) if use_mlflow else (None, None)
        record = EpisodeLog() if record_memory is not None else None
        with ExitStack() as claim:  # one writer per drawing directory, from the first episode to the last file
            if record_memory is not None:
                claim.enter_context(claim_directory(record_memory, "--record-memory"))
                check_new_files_in(record_memory, DRAWN_FILES, "--record-memory")  # a writer that just finished
            log(f"evaluating {checkpoint} on {env_id}{f' {env_config}' if env_config else ''}: {episodes} "
                f"episodes, seed {seed}, {'sampled' if explore else 'greedy'} actions")
            steps = [] if record_episodes is not None else None
            results = summarize(run_episodes(module, env, episodes, seed, explore, record, tasks, steps))
            payload = {"checkpoint": str(Path(checkpoint).resolve()), "env": env_id, "env_config": env_config,
                       "seed": seed, "explore": explore, "each_task": each_task, "memory": module.memory_kind,
                       **results}
            log(summary_line(results))
            if output is not None:  # before drawing: the results are safe whatever the drawing does
                write_json(output, payload)
                log(f"results written to {output}")
            if steps is not None:
                write_episode_steps(record_episodes, steps, results["returns"], results.get("tasks"))
                log(f"episodes written to {record_episodes} (observations, actions, rewards per step)")
            files: dict[str, Path] = {}
            if record is not None:
                files = _draw(record, record_memory, memory_steps,
                              f"{module.memory_kind} on {env_id}, return {results['returns'][0]:.2f}", cue_steps)
                log(f"memory drawn in {record_memory}: {', '.join(sorted(p.name for p in files.values()))}")
    finally:
        env.close()
    if client is not None:
        with SignalGuard() as guard, guard.holding():  # a Ctrl-C lands after the run is logged and ended
            run_id = _log_evaluation(client, parent, loaded, payload, files)
        log(f"MLflow evaluation run {run_id}" + (f" (child of training run {parent.info.run_id})" if parent else ""))
    return payload


def _draw(record: EpisodeLog, directory: Path, steps: Sequence[int] | None, title: str,
          cue_steps: int | None = None) -> dict[str, Path]:
    """The recorded episode with its phases (where the env reports ``info["phase"]``): with them (or
    ``cue_steps``), and a matrix memory, the drawings include ``retention.png``."""
    from rllib_shm.drawing import draw_memory

    return draw_memory(record.recording(title), directory, steps=steps, cue_steps=cue_steps)


def study_trial(checkpoint: Path) -> tuple[str, str, Path] | None:
    """(study name, Tune trial id, Tune storage) when ``checkpoint`` is a study trial's,
    ``<storage>/<study>/trial_<id>/checkpoint_<n>[/algo]`` beside the study's ``study.yaml``; else None."""
    path = Path(checkpoint).resolve()
    if path.name == "algo":
        path = path.parent
    trial, study = path.parent, path.parent.parent
    if path.name.startswith("checkpoint_") and trial.name.startswith("trial_") and (study / "study.yaml").is_file():
        return study.name, trial.name[len("trial_"):], study.parent
    return None


def _trial_run(client, study: str, trial_id: str):
    """The MLflow run of a study's trial (tags ``rllib_shm.study`` and ``rllib_shm.trial_id``), or None."""
    from rllib_shm.tracking import trial_run_filter

    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, trial_run_filter(study, trial_id), max_results=1) if experiments else []
    return found[0] if found else None


def _tracking(loaded: LoadedCheckpoint, cli_uri: str | None, log: Callable[[str], None] = print):
    """(client, training run or None) for the evaluation run; checked (reachable, an MLflow store,
    writable) before any episode runs.

    The store: ``--mlflow-uri``, else the training run's (``train`` checkpoints record it). A study
    trial's checkpoint records none; its store is found as ``rllib-shm tune`` chose it
    ($MLFLOW_TRACKING_URI, the config's ``run.mlflow_uri``, else the SQLite file beside the Tune
    storage, if it exists), and its training run by the study's and the trial's tags. A store is
    never created: a recorded local store that is gone (a checkpoint moved to another machine)
    means no MLflow run, said in one line; a ``--mlflow-uri`` store that does not exist is refused."""
    import os

    mlflow_meta = loaded.meta.get("mlflow", {})
    trial = None if mlflow_meta else study_trial(loaded.path)
    uri = cli_uri or mlflow_meta.get("tracking_uri")
    if uri is None and trial is not None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or (loaded.config.run.mlflow_uri if loaded.config else None)
        if uri is None and (trial[2] / "mlflow.db").is_file():  # the study's default store; never a new one
            uri = f"sqlite:///{trial[2] / 'mlflow.db'}"
    if uri is None:
        return None, None
    if uri != cli_uri and uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        log(f"not logging to MLflow: the checkpoint's store {uri} does not exist any more (pass --mlflow-uri to log "
            "the evaluation elsewhere)")
        return None, None
    import mlflow

    from rllib_shm.tracking import check_tracking_uri

    check_tracking_uri(uri, create=False)
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = None
    if mlflow_meta.get("run_id") and uri == mlflow_meta.get("tracking_uri"):
        try:
            parent = client.get_run(mlflow_meta["run_id"])
        except Exception:  # noqa: BLE001 - the training run may live in another store
            parent = None
    elif trial is not None:
        parent = _trial_run(client, trial[0], trial[1])
    return client, parent


def _log_evaluation(client, parent, loaded: LoadedCheckpoint, payload: dict, files: dict[str, Path]) -> str:
    """An MLflow run for this evaluation: nested under the training run when it is known, else in
    the training config's experiment."""
    from rllib_shm.config import ExperimentConfig
    from rllib_shm.tracking import experiment_id, experiment_name

    if parent is not None:
        experiment = parent.info.experiment_id
    else:
        experiment = experiment_id(client, experiment_name(loaded.config or ExperimentConfig()))
    tags = {"kind": "evaluation", "env": payload["env"], "memory": payload["memory"],
            "checkpoint": payload["checkpoint"]}
    if parent is not None:
        tags.update({"mlflow.parentRunId": parent.info.run_id, "training_run_id": parent.info.run_id})
    run_id = client.create_run(experiment, run_name=f"eval-{Path(payload['checkpoint']).name}", tags=tags).info.run_id
    try:
        _log_results(client, run_id, payload, files)
    except BaseException as error:  # the run ends in a final state whatever cut the logging short
        client.set_terminated(run_id, status="KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    client.set_terminated(run_id)
    return run_id


def _log_results(client, run_id: str, payload: dict[str, Any], files: dict[str, Path]) -> None:
    """The evaluation's params, metrics, JSON and drawings, into its MLflow run."""
    from rllib_shm.tracking import OUTCOME_METRIC, log_metrics, log_params

    params = {key: payload[key] for key in ("episodes", "seed", "explore", "each_task")}
    if payload["env_config"]:
        params["env.config"] = str(payload["env_config"])  # as the training run's param
    log_params(client, run_id, params)
    metrics = {f"eval/{key}": payload[key] for key in ("return_mean", "return_std", "success_rate", "episode_len_mean")
               if payload.get(key) is not None}
    # the share of each named outcome (Visual Match, Key-to-Door), comparable across evaluations
    metrics.update({f"{OUTCOME_METRIC}{name}": count / payload["episodes"]
                    for name, count in payload.get("outcome_counts", {}).items()})
    log_metrics(client, run_id, metrics, step=0)
    client.log_dict(run_id, payload, "evaluation.json")
    for path in files.values():
        client.log_artifact(run_id, str(path), artifact_path="memory")
