"""``rllib-shm tune STUDY.yaml``: a Ray Tune + Optuna search with MLflow parent/child runs."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study YAML (see tune_configs/)")
    parser.add_argument("--num-samples", type=int, help="trials (overrides tune.num_samples)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (overrides tune.max_concurrent)")
    parser.add_argument("--resume", action="store_true", help="continue a study whose driver stopped")
    parser.add_argument("--storage", help="Tune storage: a local dir or URI (overrides tune.storage_path)")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, then "
                        "sqlite:///<storage>/mlflow.db)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a study value (repeatable), e.g. --set run.stop_iters=10")


def run(args: argparse.Namespace) -> int:
    from rllib_shm.studies.runner import run_study
    from rllib_shm.studies.study import load_study

    study = load_study(args.study, args.overrides, num_samples=args.num_samples,
                       max_concurrent=args.max_concurrent, storage_path=args.storage)
    run_study(study, resume=args.resume, mlflow_uri=args.mlflow_uri)
    return 0
