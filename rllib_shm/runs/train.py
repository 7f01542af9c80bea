"""One PPO run: pre-flight checks, live progress, checkpoints, MLflow, a final summary.

Everything that can be wrong with a config (keys, values, env id, env kwargs, spaces vs module,
tracking URI) is checked before Ray starts and before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from rllib_shm.config import ExperimentConfig
from rllib_shm.ray_session import ensure_ray
from rllib_shm.runs.checkpoints import write_checkpoint
from rllib_shm.tracking import (
    check_tracking_uri,
    curated_params,
    metric_name,
    provenance,
    resolve_tracking_uri,
    run_tags,
)

RETURN_KEY = ("env_runners", "episode_return_mean")


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
    """Shrink every budget: 2 iterations of 256 steps, 1 epoch, 2 envs."""
    algo = dataclasses.replace(config.algo, train_batch_size=256, minibatch_size=128, num_epochs=1,
                               num_envs_per_env_runner=2, num_env_runners=0)
    run = dataclasses.replace(config.run, stop_iters=2, checkpoint_every=1)
    return dataclasses.replace(config, algo=algo, run=run)


def preflight(config: ExperimentConfig) -> None:
    """Build the env and the module once in this process: a bad env id, env kwargs or a module
    that cannot take the env's spaces fails here, with the env's own message."""
    from rllib_shm.config.ppo import model_config
    from rllib_shm.rllib import make_env
    from rllib_shm.rllib.module import MemoryRLModule

    try:
        env = make_env(config.env.id, config.env.config)
    except TypeError as error:
        raise ValueError(f"env.config {config.env.config} does not fit {config.env.id}: {error}") from None
    try:
        MemoryRLModule(observation_space=env.observation_space, action_space=env.action_space,
                       model_config=model_config(config))
    finally:
        env.close()


def result_value(result: dict, path: tuple[str, ...], default=float("nan")):
    """``result[path[0]][path[1]]...`` of an RLlib result dict, or ``default`` where missing."""
    node = result
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def train(
    config: ExperimentConfig,
    *,
    mlflow_uri: str | None = None,
    smoke_test: bool = False,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Run PPO for ``run.stop_iters`` iterations (or until ``run.stop_return``)."""
    import mlflow
    import ray

    from rllib_shm.config.ppo import build_ppo_config

    if smoke_test:
        config = smoke_config(config)
    output_dir = Path(config.run.output_dir).resolve()
    tracking_uri = resolve_tracking_uri(mlflow_uri, config, output_dir)
    preflight(config)
    check_tracking_uri(tracking_uri)

    run_dir = output_dir / f"{config.run.name}-{datetime.now():%Y%m%d-%H%M%S-%f}"
    run_dir.mkdir(parents=True, exist_ok=False)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(config.run.mlflow_experiment)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        config.run.mlflow_experiment)
    info = provenance()
    mlflow_run = client.create_run(experiment_id, run_name=run_dir.name,
                                   tags={**run_tags(config), **info, "run_dir": str(run_dir)})
    run_id = mlflow_run.info.run_id
    for key, value in curated_params(config).items():
        client.log_param(run_id, metric_name(key), value)
    client.log_artifact(run_id, str(run_dir / "config.yaml"))
    log(f"run {run_dir}\nMLflow run {run_id} at {tracking_uri}")

    started_ray = ensure_ray()
    status, algo = "FAILED", None
    best, final, steps, iteration, checkpoint = -math.inf, float("nan"), 0, 0, run_dir
    try:
        algo = build_ppo_config(config).build_algo()
        start = time.perf_counter()
        for iteration in range(1, config.run.stop_iters + 1):
            result = algo.train()
            final = float(result_value(result, RETURN_KEY))
            if not math.isnan(final):
                best = max(best, final)
            steps = int(result_value(result, ("env_runners", "num_env_steps_sampled_lifetime"), 0))
            elapsed = time.perf_counter() - start
            rate = steps / elapsed if elapsed > 0 else 0.0
            eta = timedelta(seconds=round(elapsed / iteration * (config.run.stop_iters - iteration)))
            log(f"[iter {iteration:>4}/{config.run.stop_iters}] env steps {steps:>9,} | return {final:7.3f} "
                f"(best {best:7.3f}) | {rate:7,.0f} steps/s | ETA {eta}")
            _log_iteration(client, run_id, iteration, result, final, best, steps, rate)
            last = iteration == config.run.stop_iters
            reached = config.run.stop_return is not None and final >= config.run.stop_return
            if iteration % config.run.checkpoint_every == 0 or last or reached:
                checkpoint = _save(algo, run_dir, iteration, steps, config, tracking_uri, run_id)
            if reached:
                log(f"mean return {final:.3f} ≥ run.stop_return {config.run.stop_return}: stopping")
                break
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if algo is not None:
            algo.stop()
        if started_ray:
            ray.shutdown()
        client.set_tag(run_id, "checkpoint", str(checkpoint))
        client.set_terminated(run_id, status=status)
    summary = TrainResult(run_dir, checkpoint, iteration, steps, final, best, run_id, tracking_uri)
    log(f"done: {iteration} iterations, {steps:,} env steps, final return {final:.3f}, best {best:.3f}\n"
        f"checkpoint: {checkpoint}\n"
        f"compare runs: mlflow ui --backend-store-uri {tracking_uri}\n"
        f"evaluate: rllib-shm evaluate {checkpoint}")
    return summary


def _log_iteration(client, run_id, iteration, result, final, best, steps, rate) -> None:
    metrics = {
        "episode_return_mean": final,
        "episode_return_max_mean": best,  # MMER so far
        "episode_len_mean": result_value(result, ("env_runners", "episode_len_mean")),
        "env_steps": steps,
        "env_steps_per_s": rate,
    }
    learner = result_value(result, ("learners", "default_policy"), {})
    for key in ("policy_loss", "vf_loss", "entropy", "mean_kl_loss", "vf_explained_var"):
        if isinstance(learner, dict) and key in learner:
            metrics[f"learner/{key}"] = learner[key]
    for key, value in metrics.items():
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(value):
            client.log_metric(run_id, metric_name(key), value, step=iteration)


def _save(algo, run_dir: Path, iteration: int, steps: int, config: ExperimentConfig, tracking_uri: str,
          run_id: str) -> Path:
    return write_checkpoint(algo, run_dir / "checkpoints" / f"iter_{iteration:05d}", config, iteration, steps,
                            {"tracking_uri": tracking_uri, "run_id": run_id})
