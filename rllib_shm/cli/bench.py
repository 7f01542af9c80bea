"""``rllib-shm bench``: the performance harnesses, one sub-command each.

- ``kernel``: forward + backward time and peak memory of the SHM recurrence implementations
  (reference pattern, unbind loop, general scan, fused) and torch's GRU / LSTM and FFM for scale.
- ``ppo``: PPO env steps per second for SHM (H = 32, 64, 128), GRU, LSTM, FFM (32×8) and RLlib's
  built-in LSTM.
- ``sac``: recurrent SAC env steps and gradient updates per second for every memory at the paper's
  Visual Match and Wind shapes, with RLlib's feed-forward SAC on the same env as the anchor.
- ``onnx``: an exported policy's size and per-step latency, onnxruntime vs the torch module.
- ``study``: one trial of a study file, timed, and the study's wall time estimated from its rate.
"""

from __future__ import annotations

import argparse
import importlib

HARNESSES: dict[str, tuple[str, str]] = {
    "kernel": ("rllib_shm.bench.kernel", "SHM recurrence: time and peak memory, fwd + bwd"),
    "ppo": ("rllib_shm.bench.ppo", "PPO env steps per second for every memory"),
    "sac": ("rllib_shm.bench.sac", "recurrent SAC env steps and gradient updates per second for every memory"),
    "onnx": ("rllib_shm.bench.onnx", "an exported policy: size and per-step latency, onnxruntime vs torch"),
    "study": ("rllib_shm.bench.study", "one trial of a study file: env steps/s, and the study's wall time"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="harness", metavar="HARNESS")
    sub.required = True
    for name, (module_path, help_text) in HARNESSES.items():
        module = importlib.import_module(module_path)
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(HARNESSES[args.harness][0]).run(args)
