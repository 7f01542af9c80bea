"""Where a Visual Match agent goes in the reward phase: the target colour, another colour, or none;
and how many apples it ate. Greedy, N episodes from seed 0 (the evaluations' episodes).
Usage: python phase3_outcomes.py CHECKPOINT [N]"""
import sys
from pathlib import Path

import numpy as np

from rllib_shm.runs.checkpoints import load_checkpoint
from rllib_shm.runs.episodes import run_episodes
from rllib_shm.runs.evaluation_env import evaluation_env_config, make_evaluation_env

checkpoint, n = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100
loaded = load_checkpoint(checkpoint)
env_id = loaded.config.env.id
env = make_evaluation_env(env_id, evaluation_env_config(env_id, env_id, loaded.config.env.config, {}), {})
outcomes = []
inner = env.unwrapped
step = env.step
def watched(action):
    obs, reward, terminated, truncated, info = step(action)
    if terminated or truncated:
        outcomes.append("target" if info.get("success") else ("other" if not inner._colours_visible else "none"))
    return obs, reward, terminated, truncated, info
env.step = watched
raw = run_episodes(loaded.module, env, n, 0)
returns = np.asarray(raw["returns"])
success = np.asarray([bool(s) for s in raw["successes"]])
apples = returns - 10.0 * success
counts = {k: outcomes.count(k) for k in ("target", "other", "none")}
print(f"{checkpoint}: target {counts['target']}, other colour {counts['other']}, no colour {counts['none']} "
      f"of {n}; apples {apples.mean():.1f} ± {apples.std():.1f}")
