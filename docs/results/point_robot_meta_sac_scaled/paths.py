"""Where the greedy Point Robot agents went: paths.png from each trial's recorded episodes.

Each trial's last checkpoint was run greedily on three held-out tasks with
``rllib-shm evaluate <checkpoint> --env-config subset=eval --episodes 3 --seed 0
--record-episodes docs/results/point_robot_meta_sac_scaled/paths_<trial>.npz --no-mlflow``
(seeded, so every trial meets the same three tasks and start positions). A panel is one
meta-episode: the first inner episode's path in blue, the second's in orange (each from its start
dot to its end cross), the hidden goal as a green circle of the goal radius (0.05) on the dashed
half-circle where goals lie. Rows: the trials (arm and seed, from evaluations.csv); columns: the
three tasks. The top row is no agent but what a memory makes possible, on the same tasks and starts:
``reference_levels.py``'s sweep, then remember (sweep the half-circle until rewarded, walk
straight back to that spot in the second inner episode).

Run from the repository root: python docs/results/point_robot_meta_sac_scaled/paths.py
"""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from reference_levels import SweepThenRemember  # noqa: E402  (this directory: the script's own)

from envs.point_robot import PointRobot  # noqa: E402

HERE = Path(__file__).parent
HORIZON = 100  # steps per inner episode (the study's env config)


def trials() -> list[tuple[str, str, str]]:
    """(trial id, arm label, seed) of every evaluated trial, SHM arms first, then by seed."""
    seen = {}
    with open(HERE / "evaluations.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            seen[row["trial"]] = (row["variant"], row["seed"])
    ordered = sorted(seen.items(), key=lambda item: ("SHM" not in item[1][0].split("critic")[-1], item[1]))
    return [(trial, label, seed) for trial, (label, seed) in ordered if (HERE / f"paths_{trial}.npz").exists()]


def reference_episode(seed: int, recorded_start: np.ndarray) -> tuple[np.ndarray, float, int]:
    """The sweep-then-remember meta-episode on the task and start ``evaluate --seed`` gave episode
    ``seed`` (the env draws both from the reset seed): observations [201, 4], return, task."""
    env = PointRobot(split="50_150", subset="eval", horizon=HORIZON, episodes_per_task=2, goal_radius=0.05)
    obs, info = env.reset(seed=seed)
    if not np.allclose(obs, recorded_start):
        raise SystemExit(f"episode {seed}: the env's start {obs} is not the recorded {recorded_start}")
    policy, rng, seen, total, done = SweepThenRemember(), np.random.default_rng(0), [obs], 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(env, obs, rng))
        seen.append(obs)
        total += reward
        done = terminated or truncated
    return np.stack(seen), total, info["task"]


def draw(ax, observations: np.ndarray, goal: np.ndarray, title: str) -> None:
    """One meta-episode: both inner episodes' paths, the goal, the half-circle."""
    arc = np.linspace(0.0, np.pi, 100)
    ax.plot(np.cos(arc), np.sin(arc), "k--", lw=0.6, alpha=0.5)
    ax.add_patch(plt.Circle(goal, 0.05, color="tab:green", alpha=0.6))
    for inner, colour in ((0, "tab:blue"), (1, "tab:orange")):
        path = observations[inner * HORIZON:(inner + 1) * HORIZON + (1 if inner else 0), :2]
        ax.plot(path[:, 0], path[:, 1], color=colour, lw=1.2)
        ax.plot(*path[0], "o", color=colour, ms=3)
        ax.plot(*path[-1], "x", color=colour, ms=4)
    ax.set_xlim(-1.8, 1.8)
    ax.set_ylim(-0.8, 1.8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=7)


def main() -> Path:
    goals = PointRobot(split="50_150", subset="eval").tasks
    rows = trials()
    if not rows:
        raise SystemExit(f"no paths_<trial>.npz beside {HERE / 'evaluations.csv'}")
    with np.load(HERE / f"paths_{rows[0][0]}.npz") as first:
        columns = len(first["returns"])
    figure, axes = plt.subplots(len(rows) + 1, columns, figsize=(2.6 * columns, 2.3 * (len(rows) + 1)),
                                squeeze=False)
    with np.load(HERE / f"paths_{rows[0][0]}.npz") as first:
        starts = [first[f"observations_{c}"][0] for c in range(columns)]
    for c in range(columns):
        observations, total, task = reference_episode(c, starts[c])
        draw(axes[0, c], observations, goals[task], f"task {task}, return {total:.0f}")
    axes[0, 0].set_ylabel("reference (no agent):\nsweep, then remember", fontsize=7)
    for r, (trial, label, seed) in enumerate(rows, start=1):
        with np.load(HERE / f"paths_{trial}.npz") as data:
            for c in range(columns):
                task = int(data["tasks"][c])
                title = f"task {task}, return {data['returns'][c]:.0f}"
                draw(axes[r, c], data[f"observations_{c}"], goals[task], title)
                if c == 0:
                    axes[r, c].set_ylabel(f"{label}\nseed {seed}", fontsize=7)
    figure.suptitle("Greedy paths on held-out tasks: 1st inner episode blue, 2nd orange (start dot, end cross); "
                    "goal green", fontsize=9)
    figure.tight_layout()
    out = HERE / "paths.png"
    figure.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(f"drawn {main()}")
