"""``rllib-shm train CONFIG.yaml``: one run (PPO or recurrent SAC) with live progress, checkpoints and MLflow."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="experiment YAML (default: the built-in defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (repeatable), e.g. --set module.memory.kind=gru")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, then "
                        "run.mlflow_uri, then sqlite:///<output_dir>/mlflow.db)")
    parser.add_argument("--smoke-test", action="store_true", help="shrink every budget (2 tiny iterations)")


def run(args: argparse.Namespace) -> int:
    from rllib_shm.config import load_config
    from rllib_shm.runs.train import train

    config = load_config(args.config, args.overrides)
    train(config, mlflow_uri=args.mlflow_uri, smoke_test=args.smoke_test)
    return 0
