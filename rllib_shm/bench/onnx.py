"""``rllib-shm bench onnx``: an exported policy's size and per-step latency, onnxruntime vs torch.

Builds the module of ``--memory`` (default SHM, H = ``--size``) on ``--env`` with the project's
default module settings and random weights, exports it with ``--theta`` (default expected) into a
temporary directory, and times one acting step at batch 1 on one CPU thread: the torch module
(``MemoryRLModule.act`` under ``no_grad``) against onnxruntime (``InferenceSession.run``), each the
median of ``--steps`` steps after 100 warm-up steps, threading the state as an episode does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rllib_shm.files import write_json
from rllib_shm.runs.outputs import check_new_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="rllib_shm/popgym-RepeatPreviousEasy-v0", help="task (its spaces)")
    parser.add_argument("--memory", default="shm", choices=("shm", "gru", "lstm", "mlp"), help="memory kind")
    parser.add_argument("--size", type=int, default=64, help="memory size H (default 64)")
    parser.add_argument("--theta", default="expected", choices=("expected", "sample"),
                        help="SHM's θ in the export (sample: row indices are inputs, drawn per step)")
    parser.add_argument("--steps", type=int, default=2000, help="timed steps per runtime (default 2000)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench_results/onnx-<time>.json)")


def run(args: argparse.Namespace) -> int:
    if args.size < 1 or args.steps < 1:
        raise ValueError(f"--size and --steps must be positive, got {args.size}, {args.steps}")
    check_new_file(args.output, "--output")
    import numpy as np
    import torch
    from ray.rllib.core.columns import Columns

    from rllib_shm.config import load_config
    from rllib_shm.config.ppo import model_config
    from rllib_shm.export.onnx_export import export_onnx
    from rllib_shm.export.runtime import OnnxPolicy
    from rllib_shm.rllib import make_env
    from rllib_shm.rllib.module import MemoryRLModule
    from rllib_shm.runs.checkpoints import CHECKPOINT_META

    torch.set_num_threads(1)
    config = load_config(None, [f"env.id={args.env}", f"module.memory.kind={args.memory}",
                                f"module.memory.mem_size={args.size}", f"module.memory.eval_theta={args.theta}"])
    env = make_env(config.env.id, config.env.config)
    torch.manual_seed(0)
    module = MemoryRLModule(observation_space=env.observation_space, action_space=env.action_space,
                            model_config=model_config(config)).eval()
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = Path(scratch) / "checkpoint"
        module.save_to_path(str(checkpoint))
        (checkpoint / CHECKPOINT_META).write_text(json.dumps({"config": config.to_dict()}))
        model = Path(scratch) / "policy.onnx"
        export_onnx(checkpoint, model, theta=args.theta, log=lambda line: None)
        size = model.stat().st_size
        policy = OnnxPolicy(model, threads=1)
        observations = [np.asarray(env.observation_space.sample())[None] for _ in range(args.steps + 100)]

        def timed(step) -> float:
            times = []
            for index, obs in enumerate(observations):
                start = time.perf_counter()
                step(obs)
                if index >= 100:
                    times.append(time.perf_counter() - start)
            return statistics.median(times)

        state = {"torch": module.initial_state(1), "onnx": policy.initial_state(1)}
        rng = np.random.default_rng(0)

        def torch_step(obs):  # (sample: the module draws its own θ rows, as when acting in RLlib)
            with torch.no_grad():
                state["torch"] = module.act(torch.as_tensor(obs)[:, None], state["torch"])[Columns.STATE_OUT]

        def onnx_step(obs):
            thetas = policy.draw_thetas(rng) if policy.theta_inputs else None
            state["onnx"] = policy.step(obs, state["onnx"], thetas)["state"]

        torch_s, onnx_s = timed(torch_step), timed(onnx_step)
    env.close()
    row = {"env": args.env, "memory": args.memory, "H": args.size, "theta": args.theta, "model_bytes": size,
           "torch_ms_per_step": torch_s * 1e3, "onnxruntime_ms_per_step": onnx_s * 1e3,
           "speedup": torch_s / onnx_s, "threads": 1, "time": datetime.now().isoformat()}
    print(f"{args.memory}-H{args.size} (θ {args.theta}) on {args.env}: model {size / 2**20:.2f} MiB; "
          f"one step at batch 1, one thread: torch {torch_s * 1e3:.3f} ms, onnxruntime {onnx_s * 1e3:.3f} ms "
          f"({torch_s / onnx_s:.1f}x)")
    output = args.output or Path("bench_results") / f"onnx-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, row, flag="--output")
    print(f"results written to {output}")
    return 0
