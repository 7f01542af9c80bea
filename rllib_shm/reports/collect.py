"""Runs read from MLflow, the report's source of truth: a study's parent and trial runs, an
experiment's training runs, or runs named by id, each with its parameters, status, times and the
per-iteration histories of ``episode_return_mean``, ``env_steps`` and, for envs that report
``info["success"]``, ``success_rate``.

A run's MMER is its ``episode_return_max_mean`` at its last iteration (the loop keeps the best mean
return so far). Runs logged before the loop's 100-episode window (no ``window_episodes`` metric:
their means were RLlib 2.60's, over one iteration's episodes) are read with the window applied to
their per-iteration means, weighted by each iteration's episodes, and their MMER recomputed the
loop's way (``rewindowed``). Where a resumed trial logged an iteration twice, the value logged last counts.
Runs log their metrics at MLflow step = env steps, with the ``iteration`` metric; runs logged before
that (no ``iteration`` metric) used the iteration as the step, and are read as such.

Parameters (named by config path; older runs' names read as today's) and the searched values of a
study's trials: ``run_params.py``.

Evaluations: the ``rllib-shm evaluate`` runs nested under the collected training runs (tag
``training_run_id``), each with its setting (the env config it ran on, greedy or sampled actions,
one episode per task or a number of episodes, the seed) and its ``eval/*`` results. Where a training
run was evaluated more than once with one setting, the evaluation that ended last counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rllib_shm.reports.run_params import read_params, space_of
from rllib_shm.tracking import OUTCOME_METRIC, STUDY_RUN_TAG, STUDY_TAG, TRIAL_TAG

MMER = "episode_return_max_mean"
RETURN = "episode_return_mean"
ENV_STEPS = "env_steps"
ITERATION = "iteration"
ENV_CONFIG = "env.config"  # the training run's env kwargs; an evaluation run's (``env_config`` before)
SUCCESS = "success_rate"
WINDOW = "window_episodes"  # logged since the loop's 100-episode window (2026-12-03)
EPISODES = "episodes"  # lifetime episodes finished
NOT_TRAINING = ("study", "evaluation")  # run kinds that are not training runs


@dataclass(frozen=True)
class History:
    """Per reported iteration (ascending): env steps so far, the mean return (NaN: none yet) and the
    success rate (over the last 100 episodes' ``info["success"]``; empty for envs that report none)."""

    iterations: tuple[int, ...] = ()
    env_steps: tuple[float, ...] = ()
    returns: tuple[float, ...] = ()
    success: tuple[float, ...] = ()  # () or one per iteration (NaN where none was logged)
    window: tuple[float, ...] = ()  # () or per iteration the episodes its means cover (100: full)

    def settled(self) -> list[bool]:
        """Per iteration, whether its means cover a full window of 100 episodes; all of them where
        the history does not say, and all of them where no window ever filled (a short run: its
        partial windows are all it has)."""
        from rllib_shm.runs.results import WINDOW_EPISODES

        full = [math.isfinite(n) and n >= WINDOW_EPISODES for n in self.window]
        return full if any(full) else [True] * len(self.iterations)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    status: str  # MLflow's: RUNNING, FINISHED, FAILED, KILLED
    params: dict[str, str]  # by config path (``tracking.curated_params``), legacy names renamed
    tags: dict[str, str]
    start_ms: int | None
    end_ms: int | None
    searched: dict[str, Any] = field(default_factory=dict)  # decoded searched values by config path
    mmer: float = math.nan
    history: History = field(default_factory=History)

    @property
    def task(self) -> str:
        return self.params.get("env.id") or self.tags.get("env") or "?"

    @property
    def seed(self) -> str:
        return self.params.get("run.seed", "?")

    @property
    def trial(self) -> str:
        return self.tags.get(TRIAL_TAG) or self.name

    @property
    def env_steps(self) -> float:
        return self.history.env_steps[-1] if self.history.env_steps else math.nan


@dataclass(frozen=True)
class Evaluation:
    """An ``rllib-shm evaluate`` run of a checkpoint of the training run ``training_run_id``."""

    run_id: str
    training_run_id: str
    setting: str  # what the episodes ran on and how (``evaluation_setting``); evaluations compare within one
    checkpoint: str
    episodes: int
    return_mean: float
    return_std: float
    success_rate: float  # NaN: the env reports no info["success"]
    end_ms: int | None
    # the share of episodes of each outcome the env names (info["outcome"]: Visual Match, Key-to-Door),
    # by name; empty where it names none. An outcome the evaluation never saw is absent (share 0).
    outcomes: tuple[tuple[str, float], ...] = ()


def evaluation_setting(params: dict[str, str], trained_env_config: str | None = None) -> str:
    """An evaluation run's setting as a label, from its params (``trained_env_config``: the training
    run's ``env_config`` param; an evaluation on that same config is on the "training env").

    >>> evaluation_setting({"env.config": "{'subset': 'eval'}", "explore": "False", "each_task": "True",
    ...                     "episodes": "150", "seed": "0"})
    "env {'subset': 'eval'} · greedy · each task once (150 episodes) · seed 0"
    >>> evaluation_setting({"env.config": "{'flatten': False}", "explore": "True", "each_task": "False",
    ...                     "episodes": "20", "seed": "None"}, trained_env_config="{'flatten': False}")
    'training env · sampled actions · 20 episodes · unseeded'
    """
    config = params.get(ENV_CONFIG, params.get("env_config"))
    env = f"env {config}" if config and config != trained_env_config else "training env"
    actions = "sampled actions" if params.get("explore") == "True" else "greedy"
    episodes = params.get("episodes", "?")
    count = f"each task once ({episodes} episodes)" if params.get("each_task") == "True" else f"{episodes} episodes"
    seed = params.get("seed")
    return " · ".join([env, actions, count, "unseeded" if seed in (None, "None") else f"seed {seed}"])


def _metric(run, key: str) -> float:
    value = run.data.metrics.get(key)
    return math.nan if value is None else float(value)


def collect_evaluations(client, runs: Iterable[RunRecord], experiment_ids: Iterable[str]) -> tuple[Evaluation, ...]:
    """The evaluation runs of ``runs`` in ``experiment_ids``: per (training run, setting), the one that
    ended last."""
    trained = {run.run_id: run.params.get(ENV_CONFIG) for run in runs}
    experiments = sorted(set(experiment_ids))
    latest: dict[tuple[str, str], Evaluation] = {}
    for run in _search(client, experiments, "tags.kind = 'evaluation'") if experiments else []:
        training_run = run.data.tags.get("training_run_id")
        if training_run not in trained or run.info.status != "FINISHED":
            continue
        params = dict(run.data.params)
        found = Evaluation(run.info.run_id, training_run, evaluation_setting(params, trained[training_run]),
                           run.data.tags.get("checkpoint", "?"),
                           int(params.get("episodes", 0)), _metric(run, "eval/return_mean"),
                           _metric(run, "eval/return_std"), _metric(run, "eval/success_rate"), run.info.end_time,
                           tuple(sorted((key.removeprefix(OUTCOME_METRIC), float(value)) for key, value
                                        in run.data.metrics.items() if key.startswith(OUTCOME_METRIC))))
        key = (training_run, found.setting)
        if key not in latest or (found.end_ms or 0) >= (latest[key].end_ms or 0):
            latest[key] = found
    return tuple(sorted(latest.values(), key=lambda e: (e.setting, e.training_run_id)))


@dataclass(frozen=True)
class Collection:
    """What a report is about: its runs (any status), the evaluation runs nested under them, and, where
    they belong to one study, the study's parent run and search space ``{path: (kind, args)}``; where
    they belong to several studies reported as one (``merged``), those studies' parent runs."""

    description: str
    tracking_uri: str
    runs: tuple[RunRecord, ...]
    parent: RunRecord | None = None
    space: dict[str, tuple[str, list]] | None = None
    evaluations: tuple[Evaluation, ...] = ()
    parents: tuple[RunRecord, ...] = ()  # several studies' parent runs (``parent`` is then None)


def merged(collections: Sequence[Collection], names: Sequence[str]) -> Collection:
    """Several studies' collections (``names``, in order) as one: their runs and evaluations together,
    their parent runs in ``parents``, no single parent or search space. They must be read from one
    tracking store."""
    uris = sorted({c.tracking_uri for c in collections})
    if len(uris) > 1:
        raise ValueError(f"the studies {list(names)} are in different MLflow stores {uris}: a report of several "
                         "studies reads one (pass --mlflow-uri)")
    quoted = [f"`{name}`" for name in names]
    description = "studies " + (", ".join(quoted[:-1]) + f" and {quoted[-1]}" if len(quoted) > 1 else quoted[0])
    return Collection(description, uris[0], tuple(run for c in collections for run in c.runs), None, None,
                      tuple(e for c in collections for e in c.evaluations),
                      tuple(c.parent for c in collections if c.parent is not None))


def _search(client, experiment_ids: list[str], query: str) -> list:
    """Every run matching ``query``, newest first."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token,
                                  order_by=["attributes.start_time DESC"])
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _record(run, space: dict | None = None) -> RunRecord:
    params, searched = read_params(dict(run.data.params), dict(run.data.tags), space)
    return RunRecord(run.info.run_id, run.info.run_name or run.info.run_id, run.info.status, params,
                     dict(run.data.tags), run.info.start_time, run.info.end_time, searched)


def _history(client, run_id: str, key: str, iterations: dict[int, int] | None = None) -> dict[int, float]:
    """{iteration: value}, the step read as its iteration through ``iterations`` ({step: iteration},
    from the ``iteration`` metric; without it the step is the iteration); an iteration logged twice
    (a resumed trial) keeps the value logged last."""
    values: dict[int, float] = {}
    for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.timestamp, m.step)):
        step = int(metric.step)
        values[iterations.get(step, step) if iterations else step] = float(metric.value)
    return values


def with_metrics(client, record: RunRecord) -> RunRecord:
    iterations = {step: int(value) for step, value in _history(client, record.run_id, ITERATION).items()}
    keys = (RETURN, ENV_STEPS, MMER, SUCCESS, WINDOW, EPISODES)
    returns, steps, best, success, window, episodes = (_history(client, record.run_id, key, iterations)
                                                       for key in keys)
    iterations = tuple(sorted(set(steps) | set(returns)))
    history = History(iterations, tuple(steps.get(i, math.nan) for i in iterations),
                      tuple(returns.get(i, math.nan) for i in iterations),
                      tuple(success.get(i, math.nan) for i in iterations) if success else (),
                      tuple(window.get(i, math.nan) for i in iterations) if window else ())
    mmer = best[max(best)] if best else math.nan
    if not window and episodes:  # logged before the loop's 100-episode window (2026-12-03)
        history, mmer = rewindowed(history, tuple(episodes.get(i, math.nan) for i in iterations))
    return replace(record, mmer=mmer, history=history)


def rewindowed(history: History, episodes: tuple[float, ...]) -> tuple[History, float]:
    """A history logged with RLlib 2.60's one-iteration means, turned into means over the last 100
    episodes as the loop now logs them (``runs/loop.py``), and its MMER over full windows (over
    partial ones where no window filled): each iteration's episodes are the growth of the lifetime
    count ``episodes``, weighted by which its means are combined.

        >>> history = History((1, 2, 3), (8.0, 16.0, 24.0), (1.0, 0.0, 0.0), (1.0, 0.5, 0.5))
        >>> new, mmer = rewindowed(history, (60.0, 110.0, 160.0))
        >>> new.returns, new.success, mmer
        ((1.0, 0.5, 0.0), (1.0, 0.75, 0.5), 0.5)
    """
    from rllib_shm.runs.results import window_best, window_chunks, window_means

    chunks: tuple = ()
    returns, success, covers, best, best_full, before = [], [], [], -math.inf, False, 0.0
    for number, count in enumerate(episodes):
        mean = history.returns[number]
        rate = history.success[number] if history.success else math.nan
        new = count - before if math.isfinite(count) else 0
        before = count if math.isfinite(count) else before
        if new > 0 and math.isfinite(mean):
            chunks = window_chunks((*chunks, (int(new), mean, rate)))
        window_mean, window_rate, covered = window_means(chunks)
        returns.append(window_mean)
        success.append(window_rate)
        covers.append(float(covered))
        best, best_full = window_best(best, best_full, window_mean, covered)
    history = replace(history, returns=tuple(returns), success=tuple(success) if history.success else (),
                      window=tuple(covers))
    return history, best if math.isfinite(best) else math.nan


def _load_metrics(client, records: list[RunRecord], log: Callable[[str], None]) -> tuple[RunRecord, ...]:
    log(f"reading the metric histories of {len(records)} run(s)")
    loaded = []
    for number, record in enumerate(records, 1):
        loaded.append(with_metrics(client, record))
        if number % 10 == 0 and number < len(records):
            log(f"  {number}/{len(records)} runs read")
    return tuple(loaded)


def study_names(client) -> list[str]:
    """The studies a store holds (for error messages)."""
    ids = [e.experiment_id for e in client.search_experiments()]
    parents = _search(client, ids, "tags.kind = 'study'") if ids else []
    return sorted({run.data.tags.get(STUDY_TAG, "?") for run in parents})


def collect_study(client, parent, space: dict | None, log: Callable[[str], None] = print) -> Collection:
    study = parent.data.tags[STUDY_TAG]
    space = space if space is not None else space_of(parent)
    children = _search(client, [parent.info.experiment_id],
                       f"tags.`{STUDY_TAG}` = '{study}' and tags.kind = 'trial'")
    records = _load_metrics(client, [_record(run, space) for run in children], log)
    evaluations = collect_evaluations(client, records, [parent.info.experiment_id])
    return Collection(f"study `{study}`", client.tracking_uri, records, _record(parent, space), space, evaluations)


def collect_experiment(client, name: str, log: Callable[[str], None] = print) -> Collection:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        known = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"--experiment {name!r}: no such MLflow experiment at {client.tracking_uri} "
                         f"(experiments there: {known})")
    runs = [run for run in _search(client, [experiment.experiment_id], "")
            if run.data.tags.get("kind") not in NOT_TRAINING]
    if not runs:
        raise ValueError(f"--experiment {name!r} holds no training runs (trial runs of studies or "
                         f"`rllib-shm train` runs) at {client.tracking_uri}")
    return _collect_runs(client, f"MLflow experiment `{name}`", runs, log)


def collect_run_ids(client, run_ids: list[str], log: Callable[[str], None] = print) -> Collection:
    from mlflow.exceptions import MlflowException

    runs, unknown = [], []
    for run_id in dict.fromkeys(run_ids):
        try:
            runs.append(client.get_run(run_id))
        except MlflowException:
            unknown.append(run_id)
    if unknown:
        raise ValueError(f"--runs: unknown MLflow run id(s) {unknown} at {client.tracking_uri}")
    wrong = [run.info.run_id for run in runs if run.data.tags.get("kind") in NOT_TRAINING]
    if wrong:
        raise ValueError(f"--runs: {wrong} are study parent or evaluation runs; expected training runs "
                         "(trial runs of a study or `rllib-shm train` runs)")
    return _collect_runs(client, f"{len(runs)} MLflow run(s)", runs, log)


def _collect_runs(client, description: str, runs: list, log: Callable[[str], None]) -> Collection:
    """Runs of one study parent get its search space, and the parent takes the report's artifacts."""
    parents = {run.data.tags.get(STUDY_RUN_TAG) or run.data.tags.get("mlflow.parentRunId") for run in runs}
    parent, space = None, None
    if len(parents) == 1 and None not in parents:
        from mlflow.exceptions import MlflowException

        try:
            candidate = client.get_run(parents.pop())
        except MlflowException:  # (a parent deleted since)
            candidate = None
        if candidate is not None and candidate.data.tags.get("kind") == "study":
            parent, space = candidate, space_of(candidate)
    records = _load_metrics(client, [_record(run, space) for run in runs], log)
    evaluations = collect_evaluations(client, records, [run.info.experiment_id for run in runs])
    return Collection(description, client.tracking_uri, records, _record(parent, space) if parent else None, space,
                      evaluations)
