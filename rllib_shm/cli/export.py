"""``rllib-shm export CHECKPOINT --output policy.onnx``: the acting step to ONNX, state explicit.

Needs the ``[export]`` extra (``pip install -e ".[export]"``: onnx, onnxscript, onnxruntime).
Checkpoints are pickles: export only checkpoints you trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path,
                        help="checkpoint directory written by `rllib-shm train` or a study")
    parser.add_argument("--output", type=Path, required=True,
                        help="the new .onnx file (a .json sidecar goes beside it)")
    parser.add_argument("--theta", choices=("expected", "sample"), default="expected",
                        help="SHM's θ: the deterministic expected calibration (default), or θ row indices as an "
                             "extra input drawn by the caller (replayable)")


def run(args: argparse.Namespace) -> int:
    from rllib_shm.export.onnx_export import check_output

    check_output(args.output)  # before anything is loaded
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ValueError(f"export needs the [export] extra (pip install -e '.[export]'): {error}") from None
    from rllib_shm.export.onnx_export import export_onnx

    export_onnx(args.checkpoint, args.output, theta=args.theta)
    return 0
