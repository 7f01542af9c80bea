"""``rllib-shm evaluate CHECKPOINT``: episodes, metrics, JSON, an MLflow evaluation run, memory plots.

Checkpoints are pickles: evaluate only checkpoints you trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint directory written by `rllib-shm train`")
    parser.add_argument("--episodes", type=int, default=20, help="episodes to run (default 20)")
    parser.add_argument("--env", help="env id (default: the training env of the checkpoint)")
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i (default 0)")
    parser.add_argument("--explore", action="store_true", help="sample actions instead of the greedy action")
    parser.add_argument("--output", type=Path, help="write the results as JSON to this new file")
    parser.add_argument("--record-memory", type=Path, metavar="DIR",
                        help="draw M_t and C_t of the first episode into DIR (PNG grids, GIF, vanishing plot)")
    parser.add_argument("--memory-steps", type=int, nargs="+", help="steps drawn in the grids (default: 8 spread)")
    parser.add_argument("--mlflow-uri", help="log the evaluation here (default: the training run's store)")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def _validate(args: argparse.Namespace) -> None:
    if args.episodes < 1:
        raise ValueError(f"--episodes must be ≥ 1, got {args.episodes}")
    if args.output is not None and args.output.exists():
        raise ValueError(f"--output {str(args.output)!r} exists; results are never overwritten")


def run(args: argparse.Namespace) -> int:
    _validate(args)
    from rllib_shm.rllib import make_env
    from rllib_shm.runs.checkpoints import load_checkpoint
    from rllib_shm.runs.episodes import EpisodeLog, check_spaces, run_episodes, summarize, write_json

    loaded = load_checkpoint(args.checkpoint)
    module = loaded.module
    if args.env is None and loaded.config is None:
        raise ValueError(f"{str(args.checkpoint)!r} does not say which env it was trained on: pass --env")
    env_id = args.env or loaded.config.env.id
    env_config = dict(loaded.config.env.config) if loaded.config and env_id == loaded.config.env.id else {}
    env = make_env(env_id, env_config)
    check_spaces(module, env)
    memory_kind = loaded.config.module.memory.kind if loaded.config else type(module.trunk.memory).__name__
    if args.record_memory is not None and not module.trunk.memory.state_shapes():
        raise ValueError(f"--record-memory: the {memory_kind!r} memory has no state to draw")
    client, parent = _tracking(args, loaded)

    record = EpisodeLog() if args.record_memory is not None else None
    print(f"evaluating {args.checkpoint} on {env_id}: {args.episodes} episodes, seed {args.seed}, "
          f"{'sampled' if args.explore else 'greedy'} actions", flush=True)
    results = summarize(run_episodes(module, env, args.episodes, args.seed, args.explore, record))
    env.close()
    payload = {"checkpoint": str(args.checkpoint.resolve()), "env": env_id, "seed": args.seed,
               "explore": args.explore, "memory": memory_kind, **results}
    success = "" if results["success_rate"] is None else f" | success {results['success_rate']:.2%}"
    print(f"return {results['return_mean']:.3f} ± {results['return_std']:.3f}{success} | "
          f"episode length {results['episode_len_mean']:.1f} over {results['episodes']} episodes")
    files: dict[str, Path] = {}
    if record is not None:
        files = _draw(record, args, f"{memory_kind} on {env_id}, return {results['returns'][0]:.2f}")
        print(f"memory drawn in {args.record_memory}: {', '.join(sorted(p.name for p in files.values()))}")
    if args.output is not None:
        write_json(args.output, payload)
        print(f"results written to {args.output}")
    if client is not None:
        _log_evaluation(client, parent, args, payload, files)
    return 0


def _draw(record, args, title: str) -> dict:
    import numpy as np

    from rllib_shm.runs.drawing import MemoryRecording, draw_memory

    recording = MemoryRecording(
        memory=np.stack(record.memory),
        calibration=np.stack(record.calibration) if record.calibration else None,
        rewards=np.asarray(record.rewards),
        title=title,
    )
    return draw_memory(recording, args.record_memory, steps=args.memory_steps)


def _tracking(args, loaded):
    """(client, training run or None) for the evaluation run; checked before any episode runs."""
    if args.no_mlflow:
        return None, None
    mlflow_meta = loaded.meta.get("mlflow", {})
    uri = args.mlflow_uri or mlflow_meta.get("tracking_uri")
    if uri is None:
        return None, None
    import mlflow

    from rllib_shm.tracking import check_tracking_uri

    check_tracking_uri(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = None
    if mlflow_meta.get("run_id") and uri == mlflow_meta.get("tracking_uri"):
        try:
            parent = client.get_run(mlflow_meta["run_id"])
        except Exception:  # noqa: BLE001 - the training run may live in another store
            parent = None
    return client, parent


def _log_evaluation(client, parent, args, payload: dict, files: dict) -> None:
    import tempfile

    from rllib_shm.runs.episodes import write_json

    if parent is not None:
        experiment_id = parent.info.experiment_id
    else:
        experiment = client.get_experiment_by_name("rllib-shm")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment("rllib-shm")
    tags = {"kind": "evaluation", "env": payload["env"], "memory": payload["memory"],
            "checkpoint": payload["checkpoint"]}
    if parent is not None:
        tags.update({"mlflow.parentRunId": parent.info.run_id, "training_run_id": parent.info.run_id})
    run = client.create_run(experiment_id, run_name=f"eval-{Path(payload['checkpoint']).name}", tags=tags)
    run_id = run.info.run_id
    for key in ("episodes", "seed", "explore"):
        client.log_param(run_id, key, payload[key])
    for key in ("return_mean", "return_std", "success_rate", "episode_len_mean"):
        if payload.get(key) is not None:
            client.log_metric(run_id, f"eval/{key}", payload[key])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluation.json"
        write_json(path, payload)
        client.log_artifact(run_id, str(path))
    for path in files.values():
        client.log_artifact(run_id, str(path), artifact_path="memory")
    client.set_terminated(run_id)
    print(f"MLflow evaluation run {run_id}" + (f" (child of training run {parent.info.run_id})" if parent else ""))
