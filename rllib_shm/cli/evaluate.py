"""``rllib-shm evaluate CHECKPOINT``: episodes, metrics, JSON, an MLflow evaluation run, memory plots.

Checkpoints are pickles: evaluate only checkpoints you trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path,
                        help="a checkpoint directory: one `rllib-shm train` wrote (<output_dir>/<run>/checkpoints/"
                             "iter_N), or a study trial's (<storage>/<study>/trial_<id>/checkpoint_N[/algo]; "
                             "`rllib-shm tune` prints the best one); or a policy.onnx from `rllib-shm export`")
    parser.add_argument("--episodes", type=int, help="episodes to run (default 20)")
    parser.add_argument("--each-task", action="store_true",
                        help="one episode per task of the env's task pool instead of --episodes (meta-RL: with "
                             "--env-config subset=eval, each held-out task exactly once)")
    parser.add_argument("--env", help="env id (default: the training env of the checkpoint)")
    parser.add_argument("--env-config", action="append", default=[], metavar="KEY=VALUE",
                        help="env kwarg merged over the training env config (repeatable; VALUE parsed as "
                             "--set does), e.g. --env-config subset=eval for held-out meta-RL tasks")
    parser.add_argument("--seed", type=int, default=0, help="episode i is reset with seed + i (default 0)")
    parser.add_argument("--explore", action="store_true", help="sample actions instead of the greedy action")
    parser.add_argument("--output", type=Path, help="write the results as JSON to this new file")
    parser.add_argument("--record-episodes", type=Path, metavar="FILE.npz",
                        help="write every episode's observations, actions and rewards, step by step, to this new "
                             ".npz (observations_<i>, actions_<i>, rewards_<i>, returns, tasks; read with np.load)")
    parser.add_argument("--record-memory", type=Path, metavar="DIR",
                        help="draw M_t and C_t of the first episode into DIR (PNG grids, GIF, vanishing plot; "
                             "with the env's info['phase']: phases marked, retention of the cue columns)")
    parser.add_argument("--memory-steps", type=int, nargs="+",
                        help="steps drawn in the grids (default: 8, spread over the phases when known)")
    parser.add_argument("--cue-steps", type=int, metavar="N",
                        help="with --record-memory: steps 0..N-1 are the cue phase of retention.png (default: the "
                             "env's first phase, from info['phase']; envs without phases need it for that figure)")
    parser.add_argument("--mlflow-uri", help="log the evaluation here (default: the training run's store; for a "
                        "study trial's checkpoint, the study's, nested under the trial's run)")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def run(args: argparse.Namespace) -> int:
    from rllib_shm.config import parse_assignments

    args.env_config = parse_assignments(args.env_config, "--env-config")
    if args.checkpoint.suffix == ".onnx":
        return _run_onnx(args)
    from rllib_shm.runs.evaluate import evaluate

    evaluate(args.checkpoint, episodes=args.episodes, env_id=args.env, env_config=args.env_config, seed=args.seed,
             explore=args.explore, output=args.output, record_memory=args.record_memory, memory_steps=args.memory_steps,
             cue_steps=args.cue_steps, mlflow_uri=args.mlflow_uri, use_mlflow=not args.no_mlflow,
             each_task=args.each_task, record_episodes=args.record_episodes, log=lambda line: print(line, flush=True))
    return 0


def _run_onnx(args: argparse.Namespace) -> int:
    """An exported policy: greedy episodes with onnxruntime (no drawing, no sampling, no MLflow run)."""
    for flag, given in (("--record-memory", args.record_memory is not None), ("--explore", args.explore),
                        ("--record-episodes", args.record_episodes is not None),
                        ("--cue-steps", args.cue_steps is not None),
                        ("--mlflow-uri", args.mlflow_uri is not None)):
        if given:
            raise ValueError(f"{flag} is not available for an ONNX policy ({args.checkpoint}); evaluate the "
                             "checkpoint it was exported from instead")
    from rllib_shm.export.evaluate import evaluate_onnx

    evaluate_onnx(args.checkpoint, episodes=args.episodes, env_id=args.env, env_config=args.env_config,
                  seed=args.seed, output=args.output, each_task=args.each_task,
                  log=lambda line: print(line, flush=True))
    return 0
