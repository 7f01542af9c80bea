"""Visual Match and Key-to-Door: lengths, crop, palette, apples, and scripted policies."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

import envs
from envs.key_to_door import KeyToDoor
from envs.tvt_grid import AGENT, APPLE, BLUE, GREEN, INDICATOR, KEY, PALETTE, RED, WALL
from envs.visual_match import VisualMatch

NORTH, SOUTH, WEST, EAST = range(4)
COLOURS = {tuple(PALETTE[code]) for code in (RED, GREEN, BLUE)}


def image(observation: np.ndarray) -> np.ndarray:
    """[75] CHW-flattened observation -> [5, 5, 3] HWC."""
    return observation.reshape(3, 5, 5).transpose(1, 2, 0)


def run_episode(env, policy, seed=None):
    observation, info = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(policy(observation, info))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps, info


@pytest.mark.parametrize(
    ("env_id", "length"),
    [
        ("rllib_shm/VisualMatch-L250-v0", 275),
        ("rllib_shm/VisualMatch-L500-v0", 525),
        ("rllib_shm/VisualMatch-L100-v0", 125),
        ("rllib_shm/KeyToDoor-L250-v0", 263),
        ("rllib_shm/KeyToDoor-L500-v0", 513),
    ],
)
def test_exact_episode_length_and_agent_always_at_crop_centre(env_id, length):
    env = envs.make(env_id)
    rng = np.random.default_rng(0)
    phases = []

    def policy(observation, info):
        assert tuple(image(observation)[2, 2]) == tuple(PALETTE[AGENT])
        phases.append(info["phase"])
        return int(rng.integers(4))

    _, steps, info = run_episode(env, policy, seed=0)
    assert steps == length and "success" in info
    explore, reward = env.unwrapped.lengths[0], env.unwrapped.lengths[2]
    assert phases[:explore] == [0] * explore and phases[-reward:] == [2] * reward


def test_first_frames_show_the_pycolab_layouts():
    vm = VisualMatch()
    observation, _ = vm.reset(seed=3)
    box = image(observation)[1:4, 1:4].reshape(9, 3)  # the 3x3 box around the agent
    kinds = [tuple(c) for c in box]
    assert kinds.count(tuple(PALETTE[WALL])) == 7 and sum(c in COLOURS for c in kinds) == 1
    assert tuple(image(observation)[0, 0]) == (204, 204, 204)  # floor / padding
    ktd = KeyToDoor(render_mode="rgb_array", render_scale=1)
    ktd.reset(seed=3)
    board = ktd.render()
    assert board.shape == (7, 11, 3)
    assert (board == PALETTE[KEY]).all(-1)[1:3, 3:8].sum() == 1
    assert (board == PALETTE[AGENT]).all(-1)[4:6, 3:8].sum() == 1


def test_apple_eaten_respawns_21_frames_later_under_a_waiting_agent():
    env = VisualMatch(explore_length=1, distractor_length=30, reward_length=1, num_apples=22)
    env.reset(seed=0)
    actions = [SOUTH, WEST, WEST] + [SOUTH] * 28  # into the distractor room, eat (5,3), wait
    rewarded = [t for t, a in enumerate(actions, 1) if env.step(a)[1] > 0]
    # eaten at distractor frame 2 (step 3); back at frame 23 (> 2 + 20), eaten again at frame 24
    assert rewarded == [3, 25]


def test_zero_length_distractor_phase_is_skipped():
    env = VisualMatch(distractor_length=0)
    phases = []
    _, steps, info = run_episode(env, lambda o, i: phases.append(i["phase"]) or NORTH, seed=0)
    assert steps == 25 and phases == [0] * 15 + [2] * 10


def test_colour_order_is_fixed_per_instance_and_target_varies():
    env = VisualMatch(distractor_length=0)
    env.reset(seed=1)
    order = env._colours
    targets = set()
    for _ in range(30):
        env.reset()
        assert env._colours == order
        targets.add(env.target_colour)
    assert targets == {RED, GREEN, BLUE}


class VisualMatchMemoryPolicy:
    """Reads the target colour in phase 1, remembers it, and looks for it in phase 3 using only
    its observations: middle cell first (visible after 2 moves), then the left one."""

    def __init__(self):
        self.target, self.plan, self.stage = None, [], 0

    def __call__(self, observation, info):
        view = image(observation)
        if info["phase"] == 0:
            seen = [tuple(c) for c in view.reshape(-1, 3) if tuple(c) in COLOURS]
            self.target = seen[0] if seen else self.target
            return NORTH
        if info["phase"] == 1:
            self.stage, self.plan = 0, []
            return EAST
        if not self.plan:
            if self.stage == 0:  # at (5, 5): walk up until the top row is in view
                self.plan = [NORTH, NORTH]
            elif self.stage == 1:  # at (3, 5): the middle cell (1, 5) is view[0, 2]
                self.plan = [NORTH, NORTH] if tuple(view[0, 2]) == self.target else [NORTH, WEST]
            elif self.stage == 2:  # at (2, 4): the left cell (1, 2) is view[1, 0]
                self.plan = [WEST, WEST, NORTH] if tuple(view[1, 0]) == self.target else [EAST] * 4 + [NORTH]
            else:
                self.plan = [SOUTH]
            self.stage += 1
        return self.plan.pop(0)


@pytest.mark.parametrize(
    ("env_id", "episodes"), [("rllib_shm/VisualMatch-L5-v0", 60), ("rllib_shm/VisualMatch-L250-v0", 6)]
)
def test_perfect_memory_policy_always_succeeds_on_visual_match(env_id, episodes):
    env = envs.make(env_id)
    env.reset(seed=11)
    results = [run_episode(env, VisualMatchMemoryPolicy()) for _ in range(episodes)]
    assert all(info["success"] for _, _, info in results)
    assert all(info["outcome"] == "cue_colour" for _, _, info in results)
    assert all(total >= 10.0 for total, _, _ in results)


def test_visual_match_names_where_the_agent_went():
    """info["outcome"]: the cue's colour (success), another colour, or none touched."""
    env = envs.make("rllib_shm/VisualMatch-L5-v0")
    env.reset(seed=5)
    north = [run_episode(env, lambda o, i: NORTH)[2] for _ in range(60)]  # always the middle colour
    assert {info["outcome"] for info in north} == {"cue_colour", "other_colour"}
    assert all((info["outcome"] == "cue_colour") == info["success"] for info in north)
    # south in phase 3 never reaches the colours in the top row
    stay = run_episode(env, lambda o, i: SOUTH if i["phase"] == 2 else NORTH)[2]
    assert stay["outcome"] == "no_colour" and not stay["success"]


def test_best_memoryless_policy_succeeds_a_third_of_the_time():
    env = envs.make("rllib_shm/VisualMatch-L5-v0")
    env.reset(seed=5)
    # The phase-3 observations do not depend on the target, so a memoryless policy picks the same
    # cell whatever the target was: always the middle one here. Success ~ Binomial(300, 1/3).
    successes = [run_episode(env, lambda o, i: NORTH)[2]["success"] for _ in range(300)]
    bound = 3 * np.sqrt(1 / 3 * 2 / 3 / 300)
    assert abs(np.mean(successes) - 1 / 3) <= bound


class KeyToDoorOracle:
    """Walks to the key with a shortest path on the rendered board, then straight to the door."""

    def __init__(self, env, pick_key: bool = True):
        self.env, self.pick_key = env, pick_key

    def __call__(self, observation, info):
        if info["phase"] == 2:
            return NORTH
        board = self.env.render()
        keys = np.argwhere((board == PALETTE[KEY]).all(-1))
        if info["phase"] == 1 or not self.pick_key or len(keys) == 0:
            return SOUTH  # wait (into the wall in phase 1's lower room) or wander the apple room
        start = tuple(np.argwhere((board == PALETTE[AGENT]).all(-1))[0])
        free = ~(board == PALETTE[WALL]).all(-1)
        return first_move(free, start, tuple(keys[0]))


def first_move(free: np.ndarray, start: tuple, goal: tuple) -> int:
    moves = ((-1, 0), (1, 0), (0, -1), (0, 1))
    queue, first = deque([start]), {start: None}
    while queue:
        cell = queue.popleft()
        if cell == goal:
            break
        for action, (dr, dc) in enumerate(moves):
            nxt = (cell[0] + dr, cell[1] + dc)
            if 0 <= nxt[0] < 7 and 0 <= nxt[1] < 11 and free[nxt] and nxt not in first:
                first[nxt] = action if first[cell] is None else first[cell]
                queue.append(nxt)
    return first[goal]


@pytest.mark.parametrize(
    ("env_id", "episodes"), [("rllib_shm/KeyToDoor-L5-v0", 60), ("rllib_shm/KeyToDoor-L500-v0", 3)]
)
def test_key_to_door_oracle_always_succeeds(env_id, episodes):
    env = envs.make(env_id, render_mode="rgb_array", render_scale=1)
    env.reset(seed=2)
    results = [run_episode(env, KeyToDoorOracle(env.unwrapped)) for _ in range(episodes)]
    assert all(info["success"] for _, _, info in results)
    assert all(info["outcome"] == "opened_door" for _, _, info in results)


def test_key_to_door_names_how_far_the_agent_got():
    """info["outcome"]: the door opened (success), the key picked up but not used, or no key."""
    env = envs.make("rllib_shm/KeyToDoor-L5-v0", render_mode="rgb_array", render_scale=1)
    env.reset(seed=3)
    oracle = KeyToDoorOracle(env.unwrapped)
    unused = run_episode(env, lambda o, i: SOUTH if i["phase"] == 2 else oracle(o, i))[2]
    assert unused["outcome"] == "key_unused" and not unused["success"]
    no_key = run_episode(env, KeyToDoorOracle(env.unwrapped, pick_key=False))[2]
    assert no_key["outcome"] == "no_key" and not no_key["success"]


def test_key_pickup_flashes_the_indicator_for_one_frame():
    env = KeyToDoor(render_mode="rgb_array", render_scale=1)
    observation, info = env.reset(seed=0)
    oracle, flashes = KeyToDoorOracle(env), []
    for _ in range(10):  # the explore phase
        observation, _, _, _, info = env.step(oracle(observation, info))
        flashes.append(bool((image(observation) == PALETTE[INDICATOR]).all(-1).any()))
    assert flashes.count(True) == 1 and info["phase"] == 1


def test_door_stays_shut_without_the_key():
    env = envs.make("rllib_shm/KeyToDoor-L5-v0", render_mode="rgb_array", render_scale=1)
    env.reset(seed=4)
    total, steps, info = run_episode(env, KeyToDoorOracle(env.unwrapped, pick_key=False))
    assert steps == 18 and not info["success"]
    board = env.unwrapped.render()
    assert tuple(np.argwhere((board == PALETTE[AGENT]).all(-1))[0]) == (2, 5)  # below the door


def test_unflattened_observation_and_apple_colour():
    env = KeyToDoor(explore_length=1, distractor_length=3, flatten=False)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (3, 5, 5) and env.observation_space.shape == (3, 5, 5)
    env.step(NORTH)  # into the distractor room: agent at (5, 5), apples around
    observation = env.step(NORTH)[0]
    assert observation.shape == (3, 5, 5)
    assert {tuple(c) for c in observation.transpose(1, 2, 0).reshape(-1, 3)} <= {
        tuple(PALETTE[code]) for code in (AGENT, APPLE, WALL)
    } | {(204, 204, 204)}
