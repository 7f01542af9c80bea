"""Visual Match: remember a colour seen at the start, pick it after a long distractor phase."""

from __future__ import annotations

import numpy as np

from envs.tvt_grid import BLUE, GREEN, RED, WALL, GridPhaseEnv, parse_rows

# Phase 0 (passive explore): the agent sits in a 3x3 box; one neighbour 'p' keeps the target
# colour, the other seven become walls. The rest of the board is floor.
EXPLORE_ROWS = (
    "           ",
    "    ppp    ",
    "    p+p    ",
    "    ppp    ",
    "           ",
    "           ",
    "           ",
)
# Phase 2 (reward): three coloured cells in the top row, at columns 2, 5 and 8.
REWARD_ROWS = (
    "###########",
    "# b  c  e #",
    "#         #",
    "#         #",
    "####   ####",
    "   # + #   ",
    "   #####   ",
)
_EXPLORE_BACKDROP, _EXPLORE_CELLS = parse_rows(EXPLORE_ROWS)
_REWARD_BACKDROP, _REWARD_CELLS = parse_rows(REWARD_ROWS)
BOX_CELLS = tuple(_EXPLORE_CELLS["p"])  # the 8 neighbours of the agent
COLOUR_CELLS = (_REWARD_CELLS["b"][0], _REWARD_CELLS["c"][0], _REWARD_CELLS["e"][0])


class VisualMatch(GridPhaseEnv):
    """Visual Match (passive), DeepMind TVT (Hung et al. 2019), as used by the SHM paper (Fig. 2).

    ## Description
    Three phases on a 7x11 board, seen through a 5x5 crop centred on the agent:

    1. explore (``explore_length`` = 15 steps): the agent sits in a 3x3 box; one of its 8
       neighbours shows the target colour (red, green or blue), the others are walls, the agent
       cannot move;
    2. distractor (``distractor_length`` = L steps): an open room with ``num_apples`` = 10 apples
       among 22 candidate cells, +``apple_reward`` per apple, an eaten apple respawns
       ``respawn_every`` = 20 steps later;
    3. reward (``reward_length`` = 10 steps): red, green and blue cells in the top row at
       columns 2, 5 and 8; touching any of them hides all three; the target colour pays
       ``final_reward`` = 10.

    The left-to-right order of the three colours is drawn once per env instance (at the first
    reset and at every reset with a new seed); the target colour is drawn every episode. A
    memoryless policy succeeds at most 1/3 of the time, a perfect-memory policy always.

    ## Observation space
    ``Box(0, 255, (75,), uint8)``: the 5x5 RGB crop in CHW order, flattened (``flatten=False``
    gives ``(3, 5, 5)``). uint8 as in the reference code; the RLlib layer casts it to float32.
    Palette: agent (228,148,109), wall (25,25,25), floor (204,204,204), apple (140,178,0).

    ## Action space
    ``Discrete(4)``; moving into a wall is a no-op.

    | Num | Name  | Action     |
    |-----|-------|------------|
    | 0   | north | move up    |
    | 1   | south | move down  |
    | 2   | west  | move left  |
    | 3   | east  | move right |

    ## Rewards
    +``apple_reward`` per apple in phase 2; +``final_reward`` for touching the target colour in
    phase 3, 0 for the other two.

    ## Termination
    Terminated after exactly ``explore_length + distractor_length + reward_length`` steps
    (15 + L + 10); never truncated. The last step's ``info["success"]`` is True iff phase 3 paid
    a positive reward. Every step's ``info["phase"]`` is the phase of the returned observation;
    ``phase_names`` names phases 0, 1, 2 (for memory drawings). The last step's ``info["outcome"]``
    says where the agent went in phase 3: ``"cue_colour"`` (success), ``"other_colour"`` or
    ``"no_colour"`` (touched none); ``evaluate`` counts them.

    ## Registered ids
    ``rllib_shm/VisualMatch-L250-v0`` (275 steps), ``-L500-v0`` (525), ``-L100-v0`` (125, the
    reference code's default and the paper's memory figure), ``-L60-v0`` (85, Memory-RL's shortest; the
    scaled SAC study), ``-L5-v0`` (30, for tests).
    """

    phase_names = ("cue", "distractor", "reward")  # by info["phase"]
    outcomes = ("cue_colour", "other_colour", "no_colour")  # info["outcome"] at the last step

    def __init__(
        self,
        explore_length: int = 15,
        distractor_length: int = 100,
        reward_length: int = 10,
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
        self._colours: tuple[int, ...] | None = None  # colour code at COLOUR_CELLS[i]

    def _new_episode(self, reseeded: bool) -> None:
        if self._colours is None or reseeded:
            self._colours = tuple(int(c) for c in self.np_random.permutation([RED, GREEN, BLUE]))
        self._target = int(self.np_random.integers(3))  # index into COLOUR_CELLS
        self._target_cell = BOX_CELLS[int(self.np_random.integers(len(BOX_CELLS)))]

    @property
    def target_colour(self) -> int:
        """Palette code of this episode's target colour (RED, GREEN or BLUE)."""
        return self._colours[self._target]

    def _start_phase(self, phase: int) -> None:
        if phase == 0:
            self._backdrop = _EXPLORE_BACKDROP.copy()
            for cell in BOX_CELLS:
                if cell != self._target_cell:
                    self._backdrop[cell] = WALL
            self._agent = _EXPLORE_CELLS["+"][0]
        else:
            self._backdrop = _REWARD_BACKDROP
            self._agent = _REWARD_CELLS["+"][0]
            self._colours_visible = True

    def _blocked(self) -> set[tuple[int, int]]:
        return {self._target_cell} if self._phase == 0 else set()

    def _outcome(self) -> str:
        if self._colours_visible:
            return "no_colour"
        return "cue_colour" if self._phase3_reward > 0.0 else "other_colour"

    def _touch(self) -> float:
        if self._phase == 2 and self._colours_visible and self._agent in COLOUR_CELLS:
            self._colours_visible = False
            return self.final_reward if self._agent == COLOUR_CELLS[self._target] else 0.0
        return 0.0

    def _paint_objects(self, board: np.ndarray) -> None:
        if self._phase == 0:
            board[self._target_cell] = self.target_colour
        elif self._colours_visible:
            for cell, colour in zip(COLOUR_CELLS, self._colours, strict=True):
                board[cell] = colour
