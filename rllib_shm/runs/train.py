"""``train``: one run (PPO or recurrent SAC, ``algo.name``)
with pre-flight checks, live progress, checkpoints, MLflow and a final summary.

Everything that can be wrong with a config (keys, values, env id, env kwargs, spaces vs module,
tracking URI) is checked before Ray starts and before anything is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from rllib_shm.config import ExperimentConfig
from rllib_shm.files import write_text
from rllib_shm.interrupts import SignalGuard
from rllib_shm.ray_session import check_ray_address, ensure_ray
from rllib_shm.runs.checkpoints import write_checkpoint
from rllib_shm.runs.loop import Iteration, run_iterations
from rllib_shm.runs.outputs import check_new_files_in
from rllib_shm.runs.preflight import preflight
from rllib_shm.tracking import (
    check_tracking_uri,
    curated_params,
    experiment_id,
    experiment_name,
    log_metrics,
    log_params,
    provenance,
    resolve_tracking_uri,
    run_tags,
)
from rllib_shm.tracking.run_names import run_name
from rllib_shm.tracking.ui import where_to_look


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    checkpoint: Path
    iterations: int
    env_steps: int
    final_return: float
    best_return: float  # MMER: max over iterations of the mean episodic return
    mlflow_run_id: str
    tracking_uri: str


def smoke_config(config: ExperimentConfig) -> ExperimentConfig:
    """Shrink every budget: 2 iterations of 256 steps, 2 envs; PPO: 1 epoch; SAC: learning after
    one episode, 4 episodes per update."""
    if config.algo.name == "sac":
        sac = dataclasses.replace(config.algo.sac, env_steps_per_iteration=256, warmup_episodes=1, batch_episodes=4)
        algo = dataclasses.replace(config.algo, sac=sac, num_envs_per_env_runner=2, num_env_runners=0)
    else:
        algo = dataclasses.replace(config.algo, train_batch_size=256, minibatch_size=128, num_epochs=1,
                                   num_envs_per_env_runner=2, num_env_runners=0)
    run = dataclasses.replace(config.run, stop_iters=2, checkpoint_every=1)
    return dataclasses.replace(config, algo=algo, run=run)


def train(
    config: ExperimentConfig,
    *,
    mlflow_uri: str | None = None,
    smoke_test: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Run ``algo.name`` (PPO or SAC) for ``run.stop_iters`` iterations (or until ``run.stop_return``)."""
    import ray

    if smoke_test:
        config = smoke_config(config)
    output_dir = Path(config.run.output_dir).resolve()
    tracking_uri = resolve_tracking_uri(mlflow_uri, config, output_dir)
    preflight(config)
    check_new_files_in(output_dir, (), "run.output_dir")
    check_ray_address()  # a stale RAY_ADDRESS is refused before the store is created
    check_tracking_uri(tracking_uri)

    started_ray = ensure_ray()  # reached (with a timeout) before anything is created
    with SignalGuard() as guard:  # (ray.shutdown inside: a second Ctrl-C must not break into it)
        try:
            return _train(config, output_dir, tracking_uri, guard, log)
        finally:
            if started_ray:
                ray.shutdown()


def _train(config: ExperimentConfig, output_dir: Path, tracking_uri: str, guard: SignalGuard,
           log: Callable[[str], None]) -> TrainResult:
    """The run itself, once Ray is up: its directory, its MLflow run, the iterations. The run's final
    status is written before any slow cleanup, with signals held meanwhile (``SignalGuard``)."""
    import mlflow

    from rllib_shm.config.sac import build_algorithm_config

    run_dir = output_dir / f"{config.run.name}-{datetime.now():%Y%m%d-%H%M%S-%f}"
    run_dir.mkdir(parents=True, exist_ok=False)
    config_text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    write_text(run_dir / "config.yaml", config_text)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    status, algo, checkpoint = "FAILED", None, run_dir
    run_id = None
    try:
        with guard.holding():  # MLflow requests are not cut in the middle (a cut SQLite read keeps its lock)
            experiment = experiment_id(client, experiment_name(config))
            mlflow_run = client.create_run(experiment, run_name=run_name(config, prefix=config.run.name),
                                           tags={**run_tags(config), **provenance(), "run_dir": str(run_dir)})
            run_id = mlflow_run.info.run_id
            log_params(client, run_id, curated_params(config))
            client.log_text(run_id, config_text, "config.yaml")
        log(f"run {run_dir}\nMLflow run {run_id} at {tracking_uri}")

        def on_iteration(iteration: Iteration) -> None:
            nonlocal checkpoint
            guard.check()  # a Ctrl-C whose exception a finalizer swallowed (build_algo drops many objects)
            with guard.holding():  # a Ctrl-C lands after the request, not inside it
                log_metrics(client, run_id, iteration.metrics, step=iteration.progress.env_steps)  # Step: env steps
            if iteration.checkpoint_due:
                checkpoint = write_checkpoint(
                    algo, run_dir / "checkpoints" / f"iter_{iteration.progress.iteration:05d}", config,
                    iteration.progress.iteration, iteration.progress.env_steps,
                    {"tracking_uri": tracking_uri, "run_id": run_id})

        algo = build_algorithm_config(config).build_algo()
        guard.check()
        progress = run_iterations(algo, config.run, on_iteration, log=log)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        with guard.final_state():  # the status first: a second Ctrl-C can only cut the cleanup short
            if run_id is not None:
                if guard.received is not None:
                    status = "KILLED"
                client.set_tag(run_id, "checkpoint", str(checkpoint))
                client.set_terminated(run_id, status=status)
        if algo is not None:
            algo.stop()
    summary = TrainResult(run_dir, checkpoint, progress.iteration, progress.env_steps, progress.mean_return,
                          progress.best, run_id, tracking_uri)
    log(f"done: {progress.iteration} iterations, {progress.env_steps:,} env steps, final return "
        f"{progress.mean_return:.3f}, best {progress.best:.3f}\n"
        f"checkpoint: {checkpoint}\n"
        f"evaluate: rllib-shm evaluate {checkpoint}\n"
        + where_to_look(tracking_uri, experiment, f"this run with the experiment's others ({experiment_name(config)})"))
    return summary
