"""The Tune trainable of a study: one trial = one PPO run of the project, resumable from its checkpoint."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

PROGRESS = "progress.json"


def train_trial(config: dict, base: dict, space: dict) -> None:
    """Tune function trainable. ``config`` holds Optuna's suggestion for the searched paths.

    Reports per iteration: episode_return_mean, episode_return_max_mean (MMER so far),
    episode_len_mean, env_steps, env_steps_per_s, iteration, node_id; checkpoints every
    ``run.checkpoint_every`` iterations and at the end (``algo/`` + ``progress.json`` +
    ``rllib_shm.json``, loadable by ``rllib-shm evaluate``). After a failure, Tune restarts the
    trial from its latest checkpoint (``FailureConfig``) and the loop continues from there.
    """
    import ray
    from ray import tune

    from rllib_shm.config.ppo import build_ppo_config
    from rllib_shm.runs.checkpoints import write_checkpoint
    from rllib_shm.runs.train import result_value
    from rllib_shm.studies.search_space import decode, trial_config

    experiment = trial_config(base, decode(space, {k: v for k, v in config.items() if k in space}))
    algo = build_ppo_config(experiment).build_algo()
    start, best, steps_before = 1, -math.inf, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            algo.restore_from_path(str(Path(directory) / "algo"))
            progress = json.loads((Path(directory) / PROGRESS).read_text())
        start, best, steps_before = progress["iteration"] + 1, progress["best"], progress["env_steps"]
    node_id = ray.get_runtime_context().get_node_id()
    stop = experiment.run.stop_iters
    began, steps = time.perf_counter(), steps_before
    try:
        for iteration in range(start, stop + 1):
            result = algo.train()
            mean = float(result_value(result, ("env_runners", "episode_return_mean")))
            if not math.isnan(mean):
                best = max(best, mean)
            steps = int(result_value(result, ("env_runners", "num_env_steps_sampled_lifetime"), 0))  # restored too
            metrics = {
                "episode_return_mean": mean,
                "episode_return_max_mean": best if math.isfinite(best) else float("nan"),
                "episode_len_mean": float(result_value(result, ("env_runners", "episode_len_mean"))),
                "env_steps": steps,
                "env_steps_per_s": (steps - steps_before) / max(time.perf_counter() - began, 1e-9),
                "iteration": iteration,
                "node_id": node_id,
            }
            if iteration % experiment.run.checkpoint_every == 0 or iteration == stop:
                with tempfile.TemporaryDirectory() as directory:
                    write_checkpoint(algo, Path(directory) / "algo", experiment, iteration, steps)
                    progress = {"iteration": iteration, "best": best, "env_steps": steps}
                    Path(directory, PROGRESS).write_text(json.dumps(progress))
                    tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
            else:
                tune.report(metrics)
    finally:
        algo.stop()
