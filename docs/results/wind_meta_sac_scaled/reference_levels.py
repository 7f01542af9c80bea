"""Reference levels of Wind (50/150 split, horizon 100, goal radius 0.01), with no learning.

Three fixed policies on the env itself (no Ray, no model), greedy where they are deterministic:
- random: actions uniform in [-1, 1]^2, 100 episodes per task;
- stand still: a = (0, 0), drifting with the wind (a greedy SAC policy whose mean action is
  still about 0 does this);
- straight up: a = (0, 1) at every step, ignoring the wind;
- oracle: knows the task's hidden wind w and takes the move that lands closest to the goal,
  a = clip((goal - s - w) / 0.1, -1, 1). Its success is the ceiling: a task whose upward wind
  is below -0.09 cannot be crossed in 100 steps (each move is at most 0.1 per coordinate).

Run from the repository root: OMP_NUM_THREADS=1 python docs/results/wind_meta_sac_scaled/reference_levels.py
"""

import numpy as np

from envs.navigation import fixed_policy_level
from envs.wind import Wind


def evaluate(policy, subset: str, episodes_per_task: int, seed: int = 0) -> tuple[float, float]:
    """Mean return and success share over each task of ``subset``, ``episodes_per_task`` each."""
    env = Wind(split="50_150", subset=subset, horizon=100, goal_radius=0.01)
    return fixed_policy_level(env, lambda: policy, episodes_per_task, seed)


def random_policy(env, obs, rng):
    return rng.uniform(-1.0, 1.0, 2)


def stand_still(env, obs, rng):
    return np.zeros(2)


def straight_up(env, obs, rng):
    return np.array([0.0, 1.0])


def oracle(env, obs, rng):
    position = obs[:2].astype(np.float64)
    return np.clip((env.GOAL - position - env.wind) / env.max_step, -1.0, 1.0)


if __name__ == "__main__":
    print("| policy | train tasks (50): return, success | held-out tasks (150): return, success |")
    print("|---|---|---|")
    for name, policy, episodes in (("random", random_policy, 100), ("stand still", stand_still, 1),
                                   ("straight up", straight_up, 1),
                                   ("oracle (knows the wind)", oracle, 1)):
        cells = [evaluate(policy, subset, episodes) for subset in ("train", "eval")]
        print(f"| {name} | " + " | ".join(f"{r:.3f}, {100 * s:.2f} %" for r, s in cells) + " |")
