"""Key-to-Door: pick up a key, collect apples for a long time, then open a door with the key."""

from __future__ import annotations

import numpy as np

from envs.tvt_grid import DOOR, INDICATOR, KEY, GridPhaseEnv, parse_rows

# Phase 0 (explore): key at one of the 'k' cells (upper room), agent at one of the '+' cells
# (lower room); the rooms are joined by a 3-cell opening.
EXPLORE_ROWS = (
    "  #######  ",
    "  #kkkkk#  ",
    "  #kkkkk#  ",
    "  ##   ##  ",
    "  #+++++#  ",
    "  #+++++#  ",
    "  #######  ",
)
# Phase 2 (reward): a door in the top wall, two moves above the agent.
REWARD_ROWS = (
    "           ",
    "   ##d##   ",
    "   #   #   ",
    "   # + #   ",
    "   #   #   ",
    "   #####   ",
    "           ",
)
INDICATOR_CELL = (0, 5)  # shows white for one frame when the key is picked up
_EXPLORE_BACKDROP, _EXPLORE_CELLS = parse_rows(EXPLORE_ROWS)
_REWARD_BACKDROP, _REWARD_CELLS = parse_rows(REWARD_ROWS)
KEY_CELLS = tuple(_EXPLORE_CELLS["k"])
START_CELLS = tuple(_EXPLORE_CELLS["+"])
DOOR_CELL = _REWARD_CELLS["d"][0]


class KeyToDoor(GridPhaseEnv):
    """Key-to-Door, DeepMind TVT (Hung et al. 2019), as used by the SHM paper (Fig. 2).

    ## Description
    Three phases on a 7x11 board, seen through a 5x5 crop centred on the agent:

    1. explore (``explore_length`` = 10 steps): the key lies at random in the upper room, the
       agent starts at random in the lower room; stepping on the key picks it up (a white
       indicator flashes in the top wall for one frame);
    2. distractor (``distractor_length`` = L steps): as in Visual Match, ``num_apples`` = 10
       apples among 22 cells, +``apple_reward`` each, respawn after ``respawn_every`` = 20 steps;
    3. reward (``reward_length`` = 3 steps): a door two moves above the agent; it is passable
       only if the key was picked up, and entering it pays ``final_reward`` = 10 once.

    Mostly a long-delay credit-assignment task: the key's value shows up L steps later.

    ## Observation space
    ``Box(0, 255, (75,), uint8)``: the 5x5 RGB crop in CHW order, flattened (``flatten=False``
    gives ``(3, 5, 5)``). uint8 as in the reference code; the RLlib layer casts it to float32.
    Palette: agent (228,148,109), wall (25,25,25), floor (204,204,204), apple (140,178,0),
    key (159,81,44), door (134,206,235), indicator (255,255,255).

    ## Action space
    ``Discrete(4)``; moving into a wall (or a locked door) is a no-op.

    | Num | Name  | Action     |
    |-----|-------|------------|
    | 0   | north | move up    |
    | 1   | south | move down  |
    | 2   | west  | move left  |
    | 3   | east  | move right |

    ## Rewards
    +``apple_reward`` per apple in phase 2; +``final_reward`` for entering the door with the key.

    ## Termination
    Terminated after exactly ``explore_length + distractor_length + reward_length`` steps
    (10 + L + 3); never truncated. The last step's ``info["success"]`` is True iff phase 3 paid
    a positive reward. Every step's ``info["phase"]`` is the phase of the returned observation;
    ``phase_names`` names phases 0, 1, 2 (for memory drawings). The last step's ``info["outcome"]``
    says how far the agent got: ``"opened_door"`` (success), ``"key_unused"`` (picked up the key
    in phase 1, did not enter the door) or ``"no_key"``; ``evaluate`` counts them.

    ## Registered ids
    ``rllib_shm/KeyToDoor-L250-v0`` (263 steps), ``-L500-v0`` (513), ``-L100-v0`` (113, the
    reference code's default), ``-L60-v0`` (73, Memory-RL's shortest; the scaled SAC study), ``-L5-v0``
    (18, for tests).
    """

    phase_names = ("key", "distractor", "reward")  # by info["phase"]
    outcomes = ("opened_door", "key_unused", "no_key")  # info["outcome"] at the last step

    def __init__(
        self,
        explore_length: int = 10,
        distractor_length: int = 100,
        reward_length: int = 3,
        final_reward: float = 10.0,
        apple_reward: float = 1.0,
        num_apples: int = 10,
        respawn_every: int = 20,
        flatten: bool = True,
        render_mode: str | None = None,
        render_scale: int = 8,
    ):
        super().__init__(
            (explore_length, distractor_length, reward_length),
            final_reward,
            apple_reward,
            num_apples,
            respawn_every,
            flatten,
            render_mode,
            render_scale,
        )

    def _new_episode(self, reseeded: bool) -> None:
        self._key = KEY_CELLS[int(self.np_random.integers(len(KEY_CELLS)))]
        self._start = START_CELLS[int(self.np_random.integers(len(START_CELLS)))]
        self._has_key = False  # pycolab: the_plot["has_key"], carried across phases
        self._key_visible = True
        self._indicator_visible = False

    def _start_phase(self, phase: int) -> None:
        if phase == 0:
            self._backdrop = _EXPLORE_BACKDROP
            self._agent = self._start
        else:
            self._backdrop = _REWARD_BACKDROP
            self._agent = _REWARD_CELLS["+"][0]
            # pycolab unlocks the door for the whole phase when the agent arrives with the key.
            self._door_open = self._has_key

    def _blocked(self) -> set[tuple[int, int]]:
        if self._phase == 2 and not self._door_open:
            return {DOOR_CELL}
        return set()

    def _outcome(self) -> str:
        if self._key_visible:  # the key vanishes when it is picked up
            return "no_key"
        return "opened_door" if self._phase3_reward > 0.0 else "key_unused"

    def _touch(self) -> float:
        if self._phase == 0:
            self._indicator_visible = False
            if self._key_visible and self._agent == self._key:
                self._has_key, self._key_visible, self._indicator_visible = True, False, True
            return 0.0
        if self._agent == DOOR_CELL and self._has_key:
            self._has_key = False  # the key is used up: one reward per episode
            return self.final_reward
        return 0.0

    def _paint_objects(self, board: np.ndarray) -> None:
        if self._phase == 0:
            if self._key_visible:
                board[self._key] = KEY
            if self._indicator_visible:
                board[INDICATOR_CELL] = INDICATOR
        else:
            board[DOOR_CELL] = DOOR
