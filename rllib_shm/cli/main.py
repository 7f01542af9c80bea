"""The ``rllib-shm`` command line: one sub-command per module, imported lazily.

Each sub-command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; heavy
dependencies (ray, mlflow) are imported only by the sub-command that needs them, so
``rllib-shm --help`` and ``rllib-shm bench kernel`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module path, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("rllib_shm.cli.train", "train one PPO run from a YAML config"),
    "tune": ("rllib_shm.cli.tune", "run a Tune + Optuna search (a study)"),
    "evaluate": ("rllib_shm.cli.evaluate", "evaluate a checkpoint, draw its memory"),
    "bench": ("rllib_shm.cli.bench", "performance harnesses (kernel, ...)"),
    "envs": ("rllib_shm.cli.envs", "list the registered memory environments"),
    "export": ("rllib_shm.cli.export", "export a checkpoint's acting step to ONNX (recurrent state explicit)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rllib-shm",
        description="Stable Hadamard Memory for RLlib: train, tune, evaluate, list envs, benchmark, export.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_path, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_path)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    # Small machines: one intra-op thread per process unless the user says otherwise
    # (PPO iterations slow down ~10x under thread contention on 2 cores).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except ValueError as error:
        print(f"rllib-shm {args.command}: error: {error}", file=sys.stderr)
        return 2

