"""The ``rllib-shm`` command line: one sub-command per module, imported lazily.

Each sub-command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; heavy
dependencies (ray, mlflow) are imported only by the sub-command that needs them, so
``rllib-shm --help`` and ``rllib-shm bench kernel`` start fast.

The error boundary: an anticipated failure (``ANTICIPATED``: bad values, unreadable files, full
disks, corrupt pickles, memory) ends in one line on stderr and exit code 2; anything else in one
line and exit code 1. ``--debug`` shows the full traceback instead. Ctrl-C exits 130, and SIGTERM
to ``train`` or ``tune`` 143 (128 + the signal's number), after the runs they opened were closed
KILLED.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import sys

from rllib_shm.cli.bench import HARNESSES

#: failures a user can cause or fix (bad input, files, disk, memory): one line, exit code 2
ANTICIPATED = (ValueError, OSError, pickle.UnpicklingError, EOFError, MemoryError)

# name -> (module path, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("rllib_shm.cli.train", "train one run (PPO or recurrent SAC: algo.name) from a YAML config"),
    "tune": ("rllib_shm.cli.tune", "run a Tune + Optuna search (a study)"),
    "report": ("rllib_shm.cli.report", "a study's results as markdown + PNG: Table-1 view, learning curves, budget"),
    "evaluate": ("rllib_shm.cli.evaluate", "evaluate a checkpoint (of `train` or a study trial) or an ONNX policy, "
                 "draw its memory"),
    "bench": ("rllib_shm.cli.bench", f"performance harnesses: {', '.join(HARNESSES)}"),
    "envs": ("rllib_shm.cli.envs", "list the registered memory environments"),
    "export": ("rllib_shm.cli.export", "export a checkpoint's acting step to ONNX (recurrent state explicit)"),
    "ui": ("rllib_shm.cli.ui", "serve an MLflow store on 127.0.0.1 and print the link to each experiment's runs"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rllib-shm",
        description="Stable Hadamard Memory for RLlib: train, tune, report, evaluate, list envs, benchmark, export, "
                    "serve MLflow.",
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
        code = int(module.run(args) or 0)
        if argv is None:  # the rllib-shm program (not a call from Python): its exit code is decided
            ignore_further_signals()
        return code
    except KeyboardInterrupt as interrupt:  # Ctrl-C: 130; SIGTERM (train, tune): 143
        from rllib_shm.interrupts import exit_code

        code = exit_code(interrupt)
        ignore_further_signals()  # the run has ended; another Ctrl-C while Python exits must not change the code
        print(f"rllib-shm {args.command}: {'terminated' if code == 143 else 'interrupted'}", file=sys.stderr)
        return code
    except Exception as error:
        if args.debug:
            raise
        print(f"rllib-shm {args.command}: error: {describe(error)}", file=sys.stderr)
        return 2 if isinstance(error, ANTICIPATED) else 1


def ignore_further_signals() -> None:
    """SIGINT and SIGTERM ignored from here on (main thread): a Ctrl-C that lands after the run ended,
    while the interpreter shuts down, would otherwise end it with exit code 1 (after an interrupt) or
    kill it by SIGINT (after a success, rc −2 with no message)."""
    import signal

    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(number, signal.SIG_IGN)
        except ValueError:  # not the main thread
            return


def describe(error: BaseException) -> str:
    """One line: the message (its first line), with the exception's kind where the message alone
    would not say what went wrong; unexpected errors point to ``--debug``."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, ValueError) and message:
        return message
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or type(error).__name__}: {str(error.filename)!r}"
    kind = type(error).__name__
    hint = "" if isinstance(error, ANTICIPATED) else " (unexpected; run with --debug for the traceback)"
    return f"{kind}: {message}{hint}" if message else f"{kind}{hint}"

