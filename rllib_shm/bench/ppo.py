"""``rllib-shm bench ppo``: PPO throughput (env steps per second) of every memory, same settings.

Each variant runs in its own process (own Ray instance, clean peak memory): build PPO on
``--env`` with the project's default PPO settings (2,000-step train batch, minibatch 500, 4 epochs,
8 envs, sampling and learning in that process), ``--warmup`` iterations, then ``--iterations``
timed ones. Reported: env steps/s over the timed iterations, median sampling and learning seconds
per iteration, peak RSS rise, peak numpy/Python memory of one more iteration (tracemalloc: the
episodes and connector batches, where stored states live), and the state bytes per env step.
Variants: SHM at H = 32, 64, 128; the project's GRU and LSTM (hidden 256); the project's FFM at
its paper's default size (trace M = 32 × context C = 8, ``ffm-32x8``); RLlib's built-in
LSTM (``module.rllib_lstm``: ``use_lstm=True``, cell 256, RLlib's default encoder [256, 256] and
its own state handling); and SHM H = 64, 128 with RLlib's own state handling instead of
the project's lean one (``*-rllib-states``). ``max_seq_len`` = 64 ≥ RepeatPrevious-Easy's episode.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

from rllib_shm.bench.common import rss_bytes, worker_failure
from rllib_shm.files import write_json
from rllib_shm.runs.outputs import check_new_file
from rllib_shm.runs.results import (
    ENV_STEPS_LIFETIME,
    ENV_STEPS_THIS_ITERATION,
    LEARNING_TIMER,
    SAMPLING_TIMER,
    result_value,
)

VARIANTS: dict[str, list[str]] = {
    "shm-H32": ["module.memory.kind=shm", "module.memory.mem_size=32"],
    "shm-H64": ["module.memory.kind=shm", "module.memory.mem_size=64"],
    "shm-H128": ["module.memory.kind=shm", "module.memory.mem_size=128"],
    "gru-256": ["module.memory.kind=gru", "module.memory.mem_size=256"],
    "lstm-256": ["module.memory.kind=lstm", "module.memory.mem_size=256"],
    "ffm-32x8": ["module.memory.kind=ffm", "module.memory.mem_size=32", "module.memory.context_size=8"],
    # RLlib's default PPO module with its built-in LSTM (module.rllib_lstm, built by config/ppo.py as
    # for train and studies), at RLlib's default sizes: encoder MLP [256, 256], heads on the LSTM output
    "rllib-lstm-256": ["module.rllib_lstm=true", "module.memory.kind=lstm", "module.memory.mem_size=256",
                       "module.encoder_hiddens=[256, 256]", "module.head_hiddens=[]"],
    # SHM with RLlib's own state handling (every step's H×H state kept and copied): the cost
    # that rllib_shm.rllib.connectors removes
    "shm-H64-rllib-states": ["module.memory.kind=shm", "module.memory.mem_size=64"],
    "shm-H128-rllib-states": ["module.memory.kind=shm", "module.memory.mem_size=128"],
}
MAX_SEQ_LEN = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="rllib_shm/popgym-RepeatPreviousEasy-v0",
                        help="task (default RepeatPrevious-Easy)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"subset of {list(VARIANTS)}")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations (default 5)")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default bench_results/ppo-<time>.json; never overwritten)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)


def _validate(args) -> None:
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--variants: unknown {unknown}; expected a subset of {list(VARIANTS)}")
    if args.warmup < 0 or args.iterations < 1:
        raise ValueError(f"--warmup must be ≥ 0 and --iterations ≥ 1, got {args.warmup}, {args.iterations}")
    check_new_file(args.output, "--output")
    if not args.worker:  # the env, built and played here before any worker starts Ray
        from rllib_shm.runs.env_probe import open_env, play

        env = open_env(args.env)
        try:
            play(env, args.env, seed=0)
        finally:
            env.close()


def _ppo_config(variant: str, env: str):
    from rllib_shm.config import load_config
    from rllib_shm.config.ppo import build_ppo_config

    base = [f"env.id={env}", f"module.max_seq_len={MAX_SEQ_LEN}"]
    lean = not variant.endswith("-rllib-states")
    return build_ppo_config(load_config(None, base + VARIANTS[variant]), lean_states=lean)


def _measure(variant: str, args) -> dict:
    import numpy as np
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    try:
        algo = _ppo_config(variant, args.env).build_algo()
        module = algo.get_module()
        state_bytes = sum(np.asarray(v).nbytes for v in module.get_initial_state().values())
        base = rss_bytes()
        for _ in range(args.warmup):
            algo.train()
        samples, learns, steps0, start, result = [], [], None, time.perf_counter(), None
        for _ in range(args.iterations):
            result = algo.train()
            samples.append(result_value(result, SAMPLING_TIMER))
            learns.append(result_value(result, LEARNING_TIMER))
            if steps0 is None:
                steps0 = result_value(result, ENV_STEPS_LIFETIME) - result_value(result, ENV_STEPS_THIS_ITERATION, 0)
        elapsed = time.perf_counter() - start
        steps = result_value(result, ENV_STEPS_LIFETIME) - steps0
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base  # before tracing overhead
        tracemalloc.start()  # numpy + Python allocations (episodes, connectors); not torch's
        algo.train()
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        algo.stop()
    finally:
        ray.shutdown()
    return {"variant": variant, "env_steps_per_s": steps / elapsed, "timed_steps": int(steps),
            "sample_s": statistics.median(samples), "learn_s": statistics.median(learns),
            "peak_rss_mib": peak_rss / 2**20,
            "state_bytes_per_step": int(state_bytes), "traced_peak_mib": traced_peak / 2**20}


def run(args: argparse.Namespace) -> int:
    _validate(args)
    if args.worker:
        print(json.dumps(_measure(args.worker, args)))
        return 0
    output = args.output or Path("bench_results") / f"ppo-{datetime.now():%Y%m%d-%H%M%S}.json"
    rows = []
    for variant in [v for v in VARIANTS if v in args.variants]:
        print(f"[bench ppo] {variant} on {args.env}: {args.warmup} warm-up + {args.iterations} timed iterations ...",
              file=sys.stderr, flush=True)
        argv = [sys.executable, "-m", "rllib_shm.cli", "bench", "ppo", "--worker", variant,
                "--env", args.env, "--warmup", str(args.warmup), "--iterations", str(args.iterations)]
        done = subprocess.run(argv, capture_output=True, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
        if done.returncode != 0:
            raise worker_failure(variant, done.returncode, done.stderr)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"    {rows[-1]['env_steps_per_s']:.0f} env steps/s", file=sys.stderr, flush=True)
    reference = next((r for r in rows if r["variant"] == "rllib-lstm-256"), None)
    print(f"PPO on {args.env}: train batch 2000, minibatch 500, 4 epochs, 8 envs, max_seq_len {MAX_SEQ_LEN}")
    print(f"{'variant':<22} {'env steps/s':>12} {'vs RLlib LSTM':>14} {'sample s/it':>12} {'learn s/it':>11} "
          f"{'state B/step':>13} {'RSS peak MiB':>13} {'numpy peak MiB':>15}")
    for r in rows:
        ratio = f"{r['env_steps_per_s'] / reference['env_steps_per_s']:.2f}x" if reference else "-"
        print(f"{r['variant']:<22} {r['env_steps_per_s']:>12.0f} {ratio:>14} {r['sample_s']:>12.2f} "
              f"{r['learn_s']:>11.2f} {r['state_bytes_per_step']:>13,} {r['peak_rss_mib']:>13.0f} "
              f"{r['traced_peak_mib']:>15.0f}")
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, {"env": args.env, "time": datetime.now().isoformat(), "results": rows}, flag="--output")
    print(f"results written to {output}")
    return 0
