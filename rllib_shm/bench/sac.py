"""``rllib-shm bench sac``: recurrent SAC throughput per memory, with RLlib's feed-forward SAC as the anchor.

Two settings at the shapes of the paper's off-policy experiments (SHM.md §7):

- ``visual-match``: Visual Match L = 100 (125-step episodes, (3, 5, 5) crops, CNN encoder),
  SAC-Discrete, 32 whole episodes per update (``max_seq_len`` 126);
- ``wind``: meta-RL Wind (100-step episodes, 2-D continuous actions), SAC, 64 whole episodes
  per update, memory size 64 (the fork's recurrent size).

Both: 0.25 gradient updates per env step, 8 envs, sampling and learning in one process (each
variant in its own process and Ray instance). Variants: SHM (H = 64, random θ, fresh draws), GRU,
LSTM, FFM (32 × 8), the memoryless MLP (all with the project's ``MemorySACModule``: separate actor
and critic trunks, whole-episode replay), and ``rllib-ff`` — RLlib's own feed-forward SAC
(``DefaultSACTorchRLModule``, MLPs [256, 256] on the flat observation, transitions from its
prioritized episode buffer)
on the same env, with the same number of transitions per update (episodes × episode length) and
the same 0.25 updates per env step. Reported per variant: env steps/s and gradient updates/s
over the timed iterations (after warm-up and one untimed learning iteration), and the ratio to
the anchor, the cost of memory and of whole-episode replay, measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from rllib_shm.runs.outputs import check_new_file
from rllib_shm.runs.results import ENV_STEPS_LIFETIME, result_value

UPDATES_PER_STEP = 0.25
SETTINGS: dict[str, dict] = {
    "visual-match": {
        "env": ["env.id=rllib_shm/VisualMatch-L100-v0", "env.config={flatten: false}", "module.encoder=cnn",
                "module.max_seq_len=126"],
        "episode_length": 125, "batch_episodes": 32, "memory_size": 64,
        "anchor_env_config": {"flatten": True},  # RLlib's default catalog: an MLP on the flat crop, as floats
    },
    "wind": {
        "env": ["env.id=rllib_shm/Wind-v0", "module.max_seq_len=100"],
        "episode_length": 100, "batch_episodes": 64, "memory_size": 64,
    },
}
VARIANTS = ("shm", "gru", "lstm", "ffm", "mlp", "rllib-ff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), help=f"subset of {list(SETTINGS)}")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"subset of {list(VARIANTS)}")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations (default 2)")
    parser.add_argument("--steps-per-iteration", type=int, default=256, help="env steps per iteration (default 256)")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default bench_results/sac-<time>.json; never overwritten)")
    parser.add_argument("--worker", nargs=2, metavar=("SETTING", "VARIANT"), help=argparse.SUPPRESS)


def _validate(args) -> None:
    for flag, values, valid in (("--settings", args.settings, SETTINGS), ("--variants", args.variants, VARIANTS)):
        unknown = [v for v in values if v not in valid]
        if unknown:
            raise ValueError(f"{flag}: unknown {unknown}; expected a subset of {list(valid)}")
    if args.iterations < 1 or args.steps_per_iteration < 1:
        raise ValueError(f"--iterations and --steps-per-iteration must be ≥ 1, got {args.iterations}, "
                         f"{args.steps_per_iteration}")
    check_new_file(args.output, "--output")


def algorithm_config(setting: str, variant: str, steps_per_iteration: int):
    """The RLlib config one variant runs (the project's recurrent SAC, or RLlib's feed-forward one)."""
    from rllib_shm.config import load_config
    from rllib_shm.config.sac import build_sac_config

    shape = SETTINGS[setting]
    memory = {"shm": ["module.memory.kind=shm"], "gru": ["module.memory.kind=gru"],
              "lstm": ["module.memory.kind=lstm"], "mlp": ["module.memory.kind=mlp"],
              "ffm": ["module.memory.kind=ffm", "module.memory.mem_size=32", "module.memory.context_size=8"],
              "rllib-ff": []}[variant]
    config = load_config(None, [
        *shape["env"], "algo.name=sac", f"module.memory.mem_size={shape['memory_size']}",
        *memory, "algo.num_envs_per_env_runner=8", f"algo.sac.batch_episodes={shape['batch_episodes']}",
        f"algo.sac.updates_per_step={UPDATES_PER_STEP}", f"algo.sac.env_steps_per_iteration={steps_per_iteration}",
        "algo.sac.warmup_episodes=8"])
    if variant != "rllib-ff":
        return build_sac_config(config)
    from ray.rllib.algorithms.sac import SACConfig

    from rllib_shm.rllib import resolve_env

    transitions = shape["batch_episodes"] * shape["episode_length"]
    env_config = {**config.env.config, **shape.get("anchor_env_config", {}), "env_id": config.env.id}
    return (SACConfig()
            .environment(resolve_env(f"{__name__}:float_observations_env"), env_config=env_config)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=8)
            .training(train_batch_size_per_learner=transitions, training_intensity=UPDATES_PER_STEP * transitions,
                      num_steps_sampled_before_learning_starts=8 * shape["episode_length"],
                      actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4)
            .reporting(min_sample_timesteps_per_iteration=steps_per_iteration, min_time_s_per_iteration=0)
            .debugging(seed=0))


def float_observations_env(env_id: str, **env_config):
    """``env_id`` with float32 observations (uint8 scaled to [0, 1]): RLlib's default SAC module
    does not cast uint8 observations."""
    import gymnasium as gym
    import numpy as np

    from rllib_shm.rllib import make_env

    env = make_env(env_id, env_config)
    space = env.observation_space
    if space.dtype != np.uint8:
        return env
    return gym.wrappers.TransformObservation(env, lambda obs: obs.astype(np.float32) / 255.0,
                                             gym.spaces.Box(0.0, 1.0, space.shape, np.float32))


def _measure(setting: str, variant: str, args) -> dict:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    try:
        algo = algorithm_config(setting, variant, args.steps_per_iteration).build_algo()
        while result_value(algo.train(), ("learners", "default_policy", "qf_loss"), None) is None:
            pass  # warm-up: until the first iteration with gradient updates (that one untimed too)
        start_steps = result_value(algo.train(), ENV_STEPS_LIFETIME, 0)
        began = time.perf_counter()
        for _ in range(args.iterations):
            result = algo.train()
        elapsed = time.perf_counter() - began
        algo.stop()
    finally:
        ray.shutdown()
    steps = result_value(result, ENV_STEPS_LIFETIME, 0) - start_steps
    return {"setting": setting, "variant": variant, "env_steps_per_s": steps / elapsed,
            "updates_per_s": UPDATES_PER_STEP * steps / elapsed, "timed_steps": int(steps)}


def run(args: argparse.Namespace) -> int:
    _validate(args)
    if args.worker:
        print(json.dumps(_measure(*args.worker, args)))
        return 0
    output = args.output or Path("bench_results") / f"sac-{datetime.now():%Y%m%d-%H%M%S}.json"
    rows = []
    for setting in [s for s in SETTINGS if s in args.settings]:
        for variant in [v for v in VARIANTS if v in args.variants]:
            print(f"[bench sac] {setting} / {variant} ...", file=sys.stderr, flush=True)
            argv = [sys.executable, "-m", "rllib_shm.cli", "bench", "sac", "--worker", setting, variant,
                    "--iterations", str(args.iterations), "--steps-per-iteration", str(args.steps_per_iteration)]
            done = subprocess.run(argv, capture_output=True, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
            if done.returncode != 0:
                raise RuntimeError(f"benchmark worker {setting}/{variant} failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"    {rows[-1]['env_steps_per_s']:.1f} env steps/s", file=sys.stderr, flush=True)
    print(f"SAC, {UPDATES_PER_STEP} gradient updates per env step, 8 envs, one process; ratio: to RLlib's "
          "feed-forward SAC (rllib-ff) on the same env")
    print(f"{'setting':<13} {'variant':<9} {'env steps/s':>12} {'updates/s':>10} {'vs rllib-ff':>12}")
    for row in rows:
        anchor = next((r for r in rows if r["setting"] == row["setting"] and r["variant"] == "rllib-ff"), None)
        ratio = f"{row['env_steps_per_s'] / anchor['env_steps_per_s']:.2f}x" if anchor else "-"
        print(f"{row['setting']:<13} {row['variant']:<9} {row['env_steps_per_s']:>12.1f} {row['updates_per_s']:>10.2f} "
              f"{ratio:>12}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"time": datetime.now().isoformat(), "results": rows}, indent=2))
    print(f"results written to {output}")
    return 0
