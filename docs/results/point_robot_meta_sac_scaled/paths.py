"""Where the greedy Point Robot agents went: paths.png from each trial's recorded episodes.

Each trial's last checkpoint was run greedily on three held-out tasks with
``rllib-shm evaluate <checkpoint> --env-config subset=eval --episodes 3 --seed 0
--record-episodes docs/results/point_robot_meta_sac_scaled/paths_<trial>.npz --no-mlflow``
(seeded, so every trial meets the same three tasks and start positions). A panel is one
meta-episode: the first inner episode's path in blue, the second's in orange (each from its start
dot), the hidden goal as a green circle of the goal radius (0.05) on the dashed half-circle where
goals lie. Rows: the trials (arm and seed, from evaluations.csv); columns: the three tasks.

Run from the repository root: python docs/results/point_robot_meta_sac_scaled/paths.py
"""

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def main() -> Path:
    goals = PointRobot(split="50_150", subset="eval").tasks
    rows = trials()
    if not rows:
        raise SystemExit(f"no paths_<trial>.npz beside {HERE / 'evaluations.csv'}")
    with np.load(HERE / f"paths_{rows[0][0]}.npz") as first:
        columns = len(first["returns"])
    figure, axes = plt.subplots(len(rows), columns, figsize=(2.6 * columns, 2.3 * len(rows)), squeeze=False)
    arc = np.linspace(0.0, np.pi, 100)
    for r, (trial, label, seed) in enumerate(rows):
        with np.load(HERE / f"paths_{trial}.npz") as data:
            for c in range(columns):
                ax = axes[r, c]
                observations, task = data[f"observations_{c}"], int(data["tasks"][c])
                ax.plot(np.cos(arc), np.sin(arc), "k--", lw=0.6, alpha=0.5)
                ax.add_patch(plt.Circle(goals[task], 0.05, color="tab:green", alpha=0.6))
                for inner, colour in ((0, "tab:blue"), (1, "tab:orange")):
                    path = observations[inner * HORIZON:(inner + 1) * HORIZON + (1 if inner else 0), :2]
                    ax.plot(path[:, 0], path[:, 1], color=colour, lw=1.2)
                    ax.plot(*path[0], "o", color=colour, ms=3)
                ax.set_xlim(-1.8, 1.8)
                ax.set_ylim(-0.8, 1.8)
                ax.set_aspect("equal")
                ax.tick_params(labelsize=6)
                ax.set_title(f"task {task}, return {data['returns'][c]:.0f}", fontsize=7)
                if c == 0:
                    ax.set_ylabel(f"{label}\nseed {seed}", fontsize=7)
    figure.suptitle("Greedy paths on held-out tasks: 1st inner episode blue, 2nd orange; goal green", fontsize=9)
    figure.tight_layout()
    out = HERE / "paths.png"
    figure.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(f"drawn {main()}")
