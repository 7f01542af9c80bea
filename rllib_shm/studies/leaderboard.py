"""A study's results: the leaderboard (one row per trial, best first), its text form, the
learning-curve figure, and the artifacts of the study's MLflow parent run."""

from __future__ import annotations

import csv
import io
import math

import yaml
from matplotlib.figure import Figure

from rllib_shm.studies.search_space import decode, trial_config
from rllib_shm.studies.study import Study
from rllib_shm.tracking.run_names import run_name


def _searched(result, study: Study) -> dict:
    """The trial's searched values, decoded to config values."""
    return decode(study.space, {k: v for k, v in result.config.items() if k in study.space})


def leaderboard(results, study: Study) -> list[dict]:
    """One row per trial that reported, best first by the study's metric (NaN scores last), with
    ``final_success`` (the last reported ``success_rate``; NaN for a trial without one) when any
    trial's env reports success."""
    metric, mode = study.tune.metric, study.tune.mode
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or metric not in frame:
            continue
        values = frame[metric].dropna()
        score = (values.max() if mode == "max" else values.min()) if len(values) else float("nan")
        checkpoint = result.get_best_checkpoint(metric, mode) if result.best_checkpoints else result.checkpoint
        searched = _searched(result, study)
        rows.append({
            "trial": result.path.rstrip("/").split("/")[-1] if result.path else "",
            "run": run_name(trial_config(study.base, searched), searched),  # its MLflow run's name
            **searched,
            metric: float(score),
            "final_return": float(frame["episode_return_mean"].iloc[-1]),
            "final_success": _last(frame, "success_rate"),
            "iterations": int(frame["iteration"].max()),
            "env_steps": int(frame["env_steps"].max()),
            "checkpoint": f"{checkpoint.path}/algo" if checkpoint else None,
            "error": bool(result.error),
        })
    if all(math.isnan(row["final_success"]) for row in rows):
        for row in rows:
            del row["final_success"]
    rows.sort(key=lambda r: (math.isnan(r[metric]), -r[metric] if mode == "max" else r[metric]))
    return rows


def _last(frame, column: str) -> float:
    """The last non-NaN value of ``column`` in a trial's results, or NaN."""
    values = frame[column].dropna() if column in frame else ()
    return float(values.iloc[-1]) if len(values) else float("nan")


def format_leaderboard(rows: list[dict], metric: str) -> str:
    if not rows:
        return "no trial reported a result"
    keys = [k for k in rows[0] if k not in ("checkpoint",)]
    widths = {k: max(len(k), *(len(_fmt(r.get(k))) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(_fmt(r.get(k)).ljust(widths[k]) for k in keys) for r in rows]
    return f"leaderboard (by {metric}):\n" + "\n".join(lines)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def learning_curves(results, study: Study) -> Figure:
    """Mean episode return against env steps, one line per trial, labelled by its searched values."""
    figure = Figure(figsize=(8, 5), dpi=100, layout="tight")
    axis = figure.subplots()
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty:
            continue
        label = ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in _searched(result, study).items())
        axis.plot(frame["env_steps"], frame["episode_return_mean"], label=label[:60])
    axis.set_xlabel("env steps")
    axis.set_ylabel("mean episode return")
    axis.set_title(f"study {study.tune.name}")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7)
    return figure


def markdown_table(rows: list[dict], metric: str) -> str:
    """The leaderboard as a markdown table (for the parent run's description).

    >>> print(markdown_table([{"trial": "trial_a", "algo.lr": 0.001, "episode_return_max_mean": 0.5,
    ...                        "checkpoint": "/x"}], "episode_return_max_mean"))
    | trial | algo.lr | episode_return_max_mean |
    |---|---|---|
    | trial_a | 0.001 | 0.5 |
    """
    if not rows:
        return "no trial reported a result"
    keys = [k for k in rows[0] if k not in ("checkpoint", "error")]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(row.get(k)) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def log_study_results(client, run_id: str, results, board: list[dict], study: Study, note: str = "") -> None:
    """The parent run's artifacts (leaderboard.csv/.md, the leaderboard as MLflow's table artifact
    leaderboard.json, best_config.yaml, study.yaml, learning_curves.png), its description (``note``
    and the leaderboard), its best-trial metric and tags, and its end status (FAILED when a trial
    errored)."""
    from rllib_shm.tracking import NOTE_TAG

    metric = study.tune.metric
    client.set_tag(run_id, NOTE_TAG, f"{note}\n\nLeaderboard (by `{metric}`, best first):\n\n"
                   f"{markdown_table(board, metric)}\n\nCurves: the artifact `learning_curves.png`.")
    if board:
        client.log_table(run_id, {key: [row.get(key) if not isinstance(row.get(key), dict) else str(row.get(key))
                                        for row in board] for key in board[0]}, "leaderboard.json")
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=list(board[0]))
        writer.writeheader()
        writer.writerows(board)
        client.log_text(run_id, table.getvalue(), "leaderboard.csv")
        client.log_text(run_id, format_leaderboard(board, metric), "leaderboard.md")
        best_values = {k: v for k, v in board[0].items() if k in study.space}  # ("run" is no searched path)
        best_config = trial_config(study.base, best_values).to_dict()
        client.log_text(run_id, yaml.safe_dump(best_config, sort_keys=False), "best_config.yaml")
        client.log_metric(run_id, f"best_{metric}", board[0][metric])
        client.set_tag(run_id, "best_checkpoint", str(board[0]["checkpoint"]))
        client.set_tag(run_id, "best_trial", board[0]["trial"])
    client.log_text(run_id, yaml.safe_dump(study.raw, sort_keys=False), "study.yaml")
    client.log_figure(run_id, learning_curves(results, study), "learning_curves.png")
    finished = sum(1 for r in results if not r.error)
    client.set_tag(run_id, "trials_finished", str(finished))
    client.set_terminated(run_id, status="FINISHED" if finished == len(results) else "FAILED")
