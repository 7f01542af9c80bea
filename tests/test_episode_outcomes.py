"""``run_episodes`` / ``summarize``: what the agent did in each episode, as the env names it
(``info["outcome"]`` at the last step), collected per episode and counted, most frequent first."""

import gymnasium as gym
import pytest
import torch

from envs.key_to_door import KeyToDoor
from envs.visual_match import VisualMatch
from rllib_shm.memory import MemoryConfig
from rllib_shm.rllib import make_env
from rllib_shm.rllib.module import MemoryRLModule
from rllib_shm.rllib.module_config import ModuleConfig
from rllib_shm.runs.episodes import run_episodes, summarize


@pytest.mark.parametrize(("env_id", "names", "success"), [
    ("rllib_shm/VisualMatch-L5-v0", VisualMatch.outcomes, "cue_colour"),
    ("rllib_shm/KeyToDoor-L5-v0", KeyToDoor.outcomes, "opened_door"),
])
def test_untrained_agent_episodes_carry_their_outcomes(env_id, names, success):
    env = make_env(env_id)
    config = ModuleConfig(memory=MemoryConfig(kind="gru", mem_size=8), max_seq_len=30, memory_output=8,
                          encoder_hiddens=(8,), head_hiddens=(8,))
    torch.manual_seed(0)  # parameter init only
    module = MemoryRLModule(observation_space=env.observation_space, action_space=gym.spaces.Discrete(4),
                            model_config=config.to_model_config())
    result = run_episodes(module, env, 6, seed=0)
    env.close()
    assert len(result["outcomes"]) == 6 and set(result["outcomes"]) <= set(names)
    assert [o == success for o in result["outcomes"]] == result["successes"]
    counts = summarize(result)["outcome_counts"]
    assert sum(counts.values()) == 6 and list(counts.values()) == sorted(counts.values(), reverse=True)
    assert "outcome_counts" not in summarize({**result, "outcomes": [None] * 6})  # an env that names none
