"""``rllib-shm bench study``: one trial of a study file, timed, and the study's wall time estimated from it.

A study's cost is its trials' env steps divided by their rate. The rate of a trial is not a
``bench ppo`` or ``bench sac`` figure: those run fixed shapes. This harness builds the trial's own
config from the study file (the first value of every searched path, or the values given with
``--trial PATH=VALUE``), runs it in this process until its first iteration with gradient updates
(SAC's warm-up only samples; that iteration and one more stay untimed), then times
``--iterations`` iterations:

    rate = Σ env steps / Σ seconds over the timed iterations          (env steps/s)

An iteration's time is linear in its env steps with no fixed part (``docs/off-policy.md``), so the
rate sizes the budget. The estimate assumes every trial runs its whole budget at this trial's rate,
``parallel`` = min(tune.max_concurrent, CPUs) trials at a time at ``PARALLEL_EFFICIENCY`` of the
rate each when ``parallel`` > 1 (measured on 2 cores: two PPO trials at once gain about 1.6×):

    trial_s = (budget − W) / rate + warm-up seconds,  study_s = trials · trial_s / (parallel · efficiency)

where W and the warm-up seconds are the env steps and time until the end of the first iteration
that learned. SAC's initial episodes only sample, at a much faster rate than learning iterations
(Point Robot: about 80,000 of a 120,000-step budget in ~75 s); counted at the learning rate they
would size such a trial several times too long.

It is an upper bound for studies whose trials stop when solved (``run.stop_success``), and only
as good as the assumption that the other trials cost what this one does: time the slowest memory.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from rllib_shm.runs.outputs import check_new_file
from rllib_shm.runs.results import ENV_STEPS_LIFETIME, result_value

PARALLEL_EFFICIENCY = 0.8  # two trials at once on 2 cores: ~1.6× one trial's throughput


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", type=Path, help="study YAML (see tune_configs/)")
    parser.add_argument("--trial", action="append", default=[], metavar="PATH=VALUE",
                        help="the trial to time: a searched path and one of its values (repeatable), e.g. "
                             "--trial variant=gru --trial env.id=rllib_shm/CueRecall-D1000-v0; "
                             "default: every searched path's first value")
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations (default 2)")
    parser.add_argument("--output", type=Path,
                        help="JSON file (default bench_results/study-<name>-<time>.json; never overwritten)")


def trial_values(study, assignments: list[str]) -> dict:
    """The searched values of the trial to time: each path's first value, overridden by
    ``assignments`` (``PATH=VALUE``, VALUE in YAML). ValueError names a path that is not searched
    or a value that is not among the path's candidates."""
    from rllib_shm.studies.search_space import VARIANT

    values = {path: args[0] for path, (_kind, args) in study.space.items()}
    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep or not path:
            raise ValueError(f"--trial {assignment!r}: expected PATH=VALUE, e.g. variant=gru")
        if path not in study.space:
            raise ValueError(f"--trial {path!r} is not searched by the study; its searched paths are "
                             f"{sorted(study.space)}")
        kind, args = study.space[path]
        value = raw if path == VARIANT else yaml.safe_load(raw)
        if kind == "choice" and value not in args:
            raise ValueError(f"--trial {path}={raw!r} is not one of the study's values {args}")
        if kind != "choice" and not args[0] <= value <= args[1]:
            raise ValueError(f"--trial {path}={raw!r} is outside the study's range [{args[0]}, {args[1]}]")
        values[path] = value
    return values


def budget_env_steps(config, steps_per_iteration: float) -> float:
    """A trial's budget in env steps: ``run.stop_iters`` iterations of the measured size, or
    ``run.stop_env_steps`` where that ends the trial first."""
    by_iterations = float(config.run.stop_iters) * steps_per_iteration
    if config.run.stop_env_steps:
        return min(float(config.run.stop_env_steps), by_iterations)
    return by_iterations


def estimate(study, config, rate: float, steps_per_iteration: float, warmup_s: float,
             warmup_env_steps: float = 0.0) -> dict:
    """The study's wall time if every trial ran its whole budget at ``rate``, its first
    ``warmup_env_steps`` sampled in ``warmup_s`` (module docstring)."""
    trials = study.tune.num_samples
    parallel = max(1, min(study.tune.max_concurrent or trials, os.cpu_count() or 1, trials))
    efficiency = PARALLEL_EFFICIENCY if parallel > 1 else 1.0
    budget = budget_env_steps(config, steps_per_iteration)
    warmup_env_steps = min(float(warmup_env_steps), budget)
    trial_s = (budget - warmup_env_steps) / rate + warmup_s
    return {"trials": trials, "parallel": parallel, "parallel_efficiency": efficiency,
            "budget_env_steps_per_trial": budget, "warmup_env_steps": warmup_env_steps,
            "learning_env_steps_per_trial": budget - warmup_env_steps, "trial_s": trial_s,
            "study_s": trials * trial_s / (parallel * efficiency)}


def _learned(result: dict) -> bool:
    stats = (result.get("learners") or {}).get("default_policy") or {}
    return any(key.endswith("loss") for key in stats)


def _measure(config, iterations: int) -> dict:
    import ray

    from rllib_shm.config.sac import build_algorithm_config
    from rllib_shm.runs.preflight import preflight

    preflight(config)
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
    try:
        algo = build_algorithm_config(config).build_algo()
        began = time.perf_counter()
        result = algo.train()
        while not _learned(result):  # warm-up: sampling only (SAC's initial episodes)
            result = algo.train()
        # the warm-up, untimed, ends with the first iteration that learned: its seconds and env steps
        warmup_s = time.perf_counter() - began
        warmup_env_steps = int(result_value(result, ENV_STEPS_LIFETIME, 0))
        result = algo.train()  # one more untimed learning iteration
        rows = []
        for i in range(iterations):
            start_steps = result_value(result, ENV_STEPS_LIFETIME, 0)
            began = time.perf_counter()
            result = algo.train()
            seconds = time.perf_counter() - began
            steps = result_value(result, ENV_STEPS_LIFETIME, 0) - start_steps
            rows.append({"iteration": i + 1, "seconds": seconds, "env_steps": int(steps), "learned": _learned(result)})
            print(f"[bench study] iteration {i + 1}/{iterations}: {steps:,.0f} env steps in {seconds:.1f} s "
                  f"({steps / seconds:.1f}/s)", file=sys.stderr, flush=True)
        algo.stop()
    finally:
        ray.shutdown()
    return {"warmup_s": warmup_s, "warmup_env_steps": warmup_env_steps, "iterations": rows}


def run(args: argparse.Namespace) -> int:
    from rllib_shm.files import write_json
    from rllib_shm.studies.search_space import trial_config
    from rllib_shm.studies.study import load_study

    if args.iterations < 1:
        raise ValueError(f"--iterations must be ≥ 1, got {args.iterations}")
    check_new_file(args.output, "--output")
    study = load_study(args.study)
    values = trial_values(study, args.trial)
    config = trial_config(study.base, values)
    label = ", ".join(f"{path}={value}" for path, value in values.items())
    print(f"[bench study] {study.tune.name}: timing the trial {label}", file=sys.stderr, flush=True)
    measured = _measure(config, args.iterations)
    steps = sum(row["env_steps"] for row in measured["iterations"])
    seconds = sum(row["seconds"] for row in measured["iterations"])
    if steps <= 0 or seconds <= 0:
        raise RuntimeError(f"the timed iterations sampled {steps} env steps in {seconds:.1f} s")
    rate = steps / seconds
    sized = estimate(study, config, rate, steps / len(measured["iterations"]), measured["warmup_s"],
                     measured["warmup_env_steps"])
    print(f"study {study.tune.name} ({args.study}), trial {label}")
    print(f"  {rate:.1f} env steps/s over {len(measured['iterations'])} timed iterations "
          f"({steps:,} env steps in {seconds:.1f} s; warm-up {measured['warmup_env_steps']:,} env steps "
          f"in {measured['warmup_s']:.1f} s, not timed)")
    print(f"  budget {sized['budget_env_steps_per_trial']:,.0f} env steps per trial "
          f"({sized['warmup_env_steps']:,.0f} of them the warm-up's): "
          f"{sized['trial_s'] / 60:.1f} min at this rate")
    print(f"  {sized['trials']} trials, {sized['parallel']} at a time (× {sized['parallel_efficiency']} each): "
          f"about {sized['study_s'] / 3600:.1f} h if every trial ran its whole budget at this rate "
          f"(less where trials stop when solved)")
    output = args.output or Path("bench_results") / f"study-{study.tune.name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json(output, {"time": datetime.now().isoformat(), "study": str(args.study), "name": study.tune.name,
                        "trial": {path: value for path, value in values.items()},
                        "env_steps_per_s": rate, **measured, "estimate": sized},
               flag="--output", indent=2, default=str)
    print(f"results written to {output}")
    return 0 if math.isfinite(rate) else 1
