"""Reference levels of sparse Point Robot (50/150 split, 2 inner episodes of 100 steps, goal
radius 0.05), with no learning.

Fixed policies on the env itself (no Ray, no model); the meta-episode's return is the steps spent
within 0.05 of the goal over both inner episodes (up to 200), its success whether the goal was
reached in the second:
- random: actions uniform in [-1, 1]^2, 20 meta-episodes per task;
- stand still: a = (0, 0) (a greedy SAC policy whose mean action is still about 0 does this);
- sweep, no memory: a reactive policy of position and previous reward only. It heads for the
  right end of the half-circle (1, 0), then walks the arc anticlockwise 0.09 rad per step, and
  stops where a step was rewarded. Having no memory, it sweeps again in the second inner episode;
- sweep, then remember: the same sweep in the first inner episode; in the second it walks straight
  to where it was rewarded (the meta-RL behaviour a memory makes possible);
- oracle: knows the goal and walks straight to it in both inner episodes (the ceiling).

Run from the repository root: OMP_NUM_THREADS=1 python docs/results/point_robot_meta_sac_scaled/reference_levels.py
"""

import numpy as np

from envs.navigation import fixed_policy_level
from envs.point_robot import PointRobot

ARC_STEP = 0.09  # rad per step along the unit arc: 2 sin(0.045) < 0.1, the largest move


def toward(position, target, max_step: float = 0.1) -> np.ndarray:
    """The action (in [-1, 1]^2) that moves from ``position`` to ``target``, or max_step toward it."""
    delta = np.asarray(target, np.float64) - position
    distance = float(np.linalg.norm(delta))
    if distance <= max_step:
        return delta / max_step
    return delta / distance


def sweep(position, previous_reward: float) -> np.ndarray:
    """Reactive sweep of the upper unit half-circle from angle 0 to pi (module docstring)."""
    if previous_reward > 0:
        return np.zeros(2)
    radius, angle = float(np.linalg.norm(position)), float(np.arctan2(position[1], position[0]))
    on_arc = abs(radius - 1.0) < 1e-6 and -1e-6 <= angle <= np.pi
    if not on_arc:
        return toward(position, (1.0, 0.0))
    nxt = min(angle + ARC_STEP, np.pi)
    return toward(position, (np.cos(nxt), np.sin(nxt)))


class SweepThenRemember:
    """Sweeps until rewarded; in a later inner episode walks straight to the rewarded position."""

    def __init__(self):
        self.found, self.later_episode = None, False

    def __call__(self, env, obs, rng):
        position, done_flag, previous_reward = obs[:2].astype(np.float64), float(obs[2]), float(obs[3])
        if previous_reward > 0 and self.found is None and not done_flag:
            self.found = position.copy()
        self.later_episode |= done_flag > 0  # the flag marks the first observation of a new inner episode
        if self.found is not None and self.later_episode:
            return toward(position, self.found)
        return sweep(position, previous_reward)


def evaluate(make_policy, subset: str, episodes_per_task: int, seed: int = 0) -> tuple[float, float]:
    """Mean meta-episode return and success share over each task of ``subset``."""
    env = PointRobot(split="50_150", subset=subset, horizon=100, episodes_per_task=2, goal_radius=0.05)
    return fixed_policy_level(env, make_policy, episodes_per_task, seed)


def random_policy(env, obs, rng):
    return rng.uniform(-1.0, 1.0, 2)


def stand_still(env, obs, rng):
    return np.zeros(2)


def sweep_no_memory(env, obs, rng):
    return sweep(obs[:2].astype(np.float64), float(obs[3]))


def oracle(env, obs, rng):
    return toward(obs[:2].astype(np.float64), env.goal)


if __name__ == "__main__":
    print("| policy | train tasks (50): return, success | held-out tasks (150): return, success |")
    print("|---|---|---|")
    for name, make, episodes in (("random", lambda: random_policy, 20), ("stand still", lambda: stand_still, 1),
                                 ("sweep, no memory", lambda: sweep_no_memory, 1),
                                 ("sweep, then remember", SweepThenRemember, 1),
                                 ("oracle (knows the goal)", lambda: oracle, 1)):
        cells = [evaluate(make, subset, episodes) for subset in ("train", "eval")]
        print(f"| {name} | " + " | ".join(f"{r:.2f}, {100 * s:.2f} %" for r, s in cells) + " |")
