"""The one iteration loop (PPO and recurrent SAC alike), shared by ``rllib-shm train`` and every trial of a study.

``run_iterations`` calls ``algo.train()`` until ``run.stop_iters`` (or until the mean return reaches
``run.stop_return``, the success rate ``run.stop_success``, or the env steps ``run.stop_env_steps``),
keeps the MMER (best mean return so far), prints one progress line per iteration (with the success
rate where the env reports one). Means are over the last 100 finished episodes, across iterations
(RLlib 2.60's are over one iteration's episodes; ``runs/results.py``), and a stop level counts only
once 100 episodes have finished, and hands each iteration's metrics (``runs/results.py`` names) to a
callback together with whether a checkpoint is due: every ``run.checkpoint_every`` iterations and at the last one.
What the callback does with them is the caller's: ``train`` logs to MLflow and writes checkpoints
into its run directory; a study's trainable reports to Tune with a checkpoint attached.
A resumed trial passes the ``Progress`` it had reached.

A diverged iteration (a non-finite policy or value loss; the module's weights are checked too when
a checkpoint is due) stops the loop with a ``ValueError`` before the callback runs, so no
checkpoint of it is ever written.

A crashed remote env runner is restarted by RLlib (``algo.restart_failed_env_runners``); the
iteration in which it happened is completed by the other runners, and the loop says so in one line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from rllib_shm.config import RunSection
from rllib_shm.runs.results import (
    WINDOW_EPISODES,
    Chunk,
    iteration_episodes,
    iteration_metrics,
    window_best,
    window_chunks,
    window_means,
)


@dataclass(frozen=True)
class Progress:
    """Where a run stands: iterations done, lifetime env steps, the mean return over the last 100
    episodes and the best such mean so far (MMER), with the window's iterations (``window``: per
    iteration, its finished episodes, their mean return and success rate) and whether ``best``
    comes from a full window of 100 episodes (``best_full``; until one exists, the best partial
    window counts, and the first full one replaces it)."""

    iteration: int = 0
    env_steps: int = 0
    best: float = -math.inf
    mean_return: float = math.nan
    window: tuple[Chunk, ...] = ()
    best_full: bool = False

    @property
    def best_or_nan(self) -> float:
        return self.best if math.isfinite(self.best) else math.nan


@dataclass(frozen=True)
class Iteration:
    """One finished iteration: its metrics, the progress after it, and what happens next."""

    progress: Progress
    metrics: dict[str, float]  # names in runs.results.METRICS, plus "iteration"
    checkpoint_due: bool  # every run.checkpoint_every iterations, and at the last one
    last: bool  # stop_iters reached, or run.stop_return / run.stop_success reached


#: learner statistics that are finite in every healthy iteration (explained variance may be NaN)
FINITE_STATS = ("learner/policy_loss", "learner/vf_loss", "learner/qf_loss")


def check_finite(algo, metrics: dict[str, float], number: int, weights: bool) -> None:
    """ValueError naming what became non-finite in iteration ``number``: the losses (every
    iteration) and, with ``weights``, the module's weights (before a checkpoint is written)."""
    bad = [name for name in FINITE_STATS if name in metrics and not math.isfinite(metrics[name])]
    if weights and hasattr(algo, "get_module"):
        bad += [f"weight {name}" for name in nonfinite_weights(algo.get_module())[:3]]
    if bad:
        raise ValueError(f"training diverged in iteration {number}: non-finite {', '.join(bad)}; nothing from this "
                         "iteration was saved (lower algo.lr, keep algo.grad_clip on, or check the env's rewards)")


def nonfinite_weights(module) -> list[str]:
    """Names of the weights and buffers of a torch RLModule (``MemoryRLModule`` or RLlib's own)
    holding NaN or ±inf."""
    return [name for name, tensor in module.state_dict().items()
            if tensor.is_floating_point() and not bool(tensor.isfinite().all())]


def runner_health(metrics: dict[str, float], last: tuple[int, int], log: Callable[[str], None]) -> tuple[int, int]:
    """Say when remote env runners went down or came back; ``last`` and the result are
    (healthy runners, restarts so far)."""
    if "healthy_env_runners" not in metrics:
        return last
    healthy, restarts = int(metrics["healthy_env_runners"]), int(metrics["env_runner_restarts"])
    if healthy < last[0]:
        log(f"  {last[0] - healthy} env runner(s) crashed: {healthy} healthy; the episodes they had in flight were "
            "lost, the others sampled the full batch; RLlib is restarting them")
    if restarts > last[1]:
        log(f"  {restarts - last[1]} env runner(s) restarted and rejoined ({restarts} restart(s) so far)")
    return healthy, restarts


def progress_line(iteration: Iteration, stop_iters: int, eta: timedelta) -> str:
    p, metrics = iteration.progress, iteration.metrics
    rate = metrics.get("success_rate", math.nan)
    success = "" if math.isnan(rate) else f" | success {rate:6.1%}"
    return (f"[iter {p.iteration:>4}/{stop_iters}] env steps {p.env_steps:>9,} | return {p.mean_return:7.3f} "
            f"(best {p.best:7.3f}){success} | {metrics['env_steps_per_s']:7,.0f} steps/s | ETA {eta}")


def stop_reason(run: RunSection, metrics: dict[str, float]) -> str | None:
    """Why the run stops early after an iteration with ``metrics``: ``run.stop_return`` or
    ``run.stop_success`` reached over a full window of 100 episodes (a missing or NaN value never
    reaches either), or the env-step budget ``run.stop_env_steps`` spent, else None."""
    mean, success = metrics["episode_return_mean"], metrics.get("success_rate", math.nan)
    if run.stop_env_steps is not None and metrics.get("env_steps", 0) >= run.stop_env_steps:
        return f"env steps {int(metrics['env_steps']):,} ≥ run.stop_env_steps {run.stop_env_steps:,}"
    if metrics.get("window_episodes", WINDOW_EPISODES) < WINDOW_EPISODES:
        return None  # a level is reached over 100 episodes, never over the first few
    if run.stop_return is not None and mean >= run.stop_return:
        return f"mean return {mean:.3f} ≥ run.stop_return {run.stop_return}"
    if run.stop_success is not None and success >= run.stop_success:
        return f"success rate {success:.3f} ≥ run.stop_success {run.stop_success}"
    return None


def windowed(metrics: dict[str, float], episodes: int | None,
             progress: Progress) -> tuple[tuple[Chunk, ...], float, bool]:
    """Replace the iteration's means in ``metrics`` (RLlib's: this iteration's episodes only) by the
    means over the last 100 episodes, and add ``window_episodes``; returns the new window, MMER and
    whether MMER comes from a full window. Where RLlib does not count the iteration's episodes
    (``episodes`` None), the iteration's means stay and MMER is their best."""
    mean = metrics["episode_return_mean"]
    if episodes is None:
        best = max(progress.best, mean) if not math.isnan(mean) else progress.best
        return progress.window, best, progress.best_full
    window = progress.window
    if episodes > 0 and not math.isnan(mean):
        chunk = (episodes, mean, metrics.get("success_rate", math.nan))
        window = window_chunks((*window, chunk))
    mean, success, covered = window_means(window)
    metrics["episode_return_mean"], metrics["window_episodes"] = mean, covered
    if math.isnan(success):
        metrics.pop("success_rate", None)
    else:
        metrics["success_rate"] = success
    return (window, *window_best(progress.best, progress.best_full, mean, covered))


def run_iterations(
    algo,
    run: RunSection,
    on_iteration: Callable[[Iteration], None],
    *,
    start: Progress = Progress(),
    log: Callable[[str], None] = print,
) -> Progress:
    """Train ``algo`` from ``start`` to ``run.stop_iters`` iterations (or ``run.stop_return`` /
    ``run.stop_success``);
    returns the final ``Progress``. ``on_iteration`` runs after every iteration."""
    began, progress, runners = time.perf_counter(), start, (0, 0)
    for number in range(start.iteration + 1, run.stop_iters + 1):
        result = algo.train()
        metrics = iteration_metrics(result)
        window, best, best_full = windowed(metrics, iteration_episodes(result), progress)
        mean = metrics["episode_return_mean"]
        progress = Progress(number, int(metrics["env_steps"]), best, mean, window, best_full)
        elapsed = time.perf_counter() - began
        done_here = number - start.iteration
        metrics.update(episode_return_max_mean=progress.best_or_nan, iteration=number,
                       env_steps_per_s=(progress.env_steps - start.env_steps) / elapsed if elapsed > 0 else 0.0)
        reached = stop_reason(run, metrics)
        last = number == run.stop_iters or reached is not None
        iteration = Iteration(progress, metrics, number % run.checkpoint_every == 0 or last, last)
        check_finite(algo, metrics, number, weights=iteration.checkpoint_due)
        log(progress_line(iteration, run.stop_iters,
                          timedelta(seconds=round(elapsed / done_here * (run.stop_iters - number)))))
        runners = runner_health(metrics, runners, log)
        on_iteration(iteration)
        if reached is not None:
            log(f"{reached}: stopping")
            break
    return progress
