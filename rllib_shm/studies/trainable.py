"""The Tune trainable of a study: one trial = one run of the project (PPO or SAC), resumable from its checkpoint."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

PROGRESS = "progress.json"
#: True in the report of a trial's final iteration, False before: with Tune's saved TERMINATED, the mark
#: that the trial ended for good (Tune's saved ``done`` is not one: ``runner.saved_ended``)
LAST = "last_iteration"


def train_trial(config: dict, base: dict, space: dict) -> None:
    """Tune function trainable. ``config`` holds Optuna's suggestion for the searched paths.

    Runs the project's iteration loop (``runs/loop.py``, the same as ``rllib-shm train``: stops at
    ``run.stop_iters``, once the mean return reaches ``run.stop_return`` or once the success rate
    reaches ``run.stop_success``) and reports its metrics (``runs/results.py``) plus ``iteration``
    and ``node_id`` to Tune after every iteration; when a checkpoint is due (every
    ``run.checkpoint_every`` iterations and at the last one) the report carries ``algo/`` +
    ``progress.json`` + ``rllib_shm.json``, loadable by ``rllib-shm evaluate``. The final iteration's
    report says so (``LAST``: True), which is how a study knows the trial ended for good.
    After a failure, Tune restarts the trial from its latest checkpoint (``FailureConfig``) and the
    loop continues from the progress saved there. The progress lines go to the trial's log.
    """
    import ray
    from ray import tune

    from rllib_shm.config.sac import build_algorithm_config
    from rllib_shm.runs.checkpoints import write_checkpoint
    from rllib_shm.runs.loop import Iteration, Progress, run_iterations
    from rllib_shm.studies.search_space import decode, trial_config

    experiment = trial_config(base, decode(space, {k: v for k, v in config.items() if k in space}))
    algo = build_algorithm_config(experiment).build_algo()
    start = Progress()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            algo.restore_from_path(str(Path(directory) / "algo"))
            saved = json.loads((Path(directory) / PROGRESS).read_text())
        start = Progress(saved["iteration"], saved["env_steps"], saved["best"],
                         window=tuple(tuple(chunk) for chunk in saved.get("window", ())),
                         best_full=saved.get("best_full", False))
    node_id = ray.get_runtime_context().get_node_id()

    def report(iteration: Iteration) -> None:
        metrics = {**iteration.metrics, "node_id": node_id, LAST: iteration.last}
        if not iteration.checkpoint_due:
            tune.report(metrics)
            return
        progress = iteration.progress
        with tempfile.TemporaryDirectory() as directory:
            write_checkpoint(algo, Path(directory) / "algo", experiment, progress.iteration, progress.env_steps)
            saved = {key: getattr(progress, key) for key in ("iteration", "best", "env_steps", "window", "best_full")}
            Path(directory, PROGRESS).write_text(json.dumps(saved))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

    try:
        run_iterations(algo, experiment.run, report, start=start)
    finally:
        algo.stop()


__all__ = ["LAST", "PROGRESS", "train_trial"]
