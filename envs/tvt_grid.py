"""The grid machinery shared by Visual Match and Key-to-Door (DeepMind's TVT pycolab games).

pycolab does not run on Python >= 3.10 / numpy >= 1.24, so the two games are re-implemented here
in numpy, following the pycolab semantics of the reference code (thaihungle/SHM,
``pomdp-baselines/envs/credit_assign/key_to_door``):

- A game is a story of three phases (pycolab "chapters") on a 7x11 board; phase ``p`` lasts exactly
  ``lengths[p]`` steps, so an episode is ``sum(lengths)`` steps. The step that ends a phase returns
  the first observation of the next phase (pycolab's ``Story`` discards a chapter's last frame).
- Inside a step: the agent moves (N, S, W, E; a move into a wall or an impassable object is a
  no-op), then objects react to the agent's new cell, then apples respawn (distractor phase).
- Every observation is the 5x5 crop centred on the agent (pycolab ``ScrollingCropper`` with
  margins 2), padded with the floor colour, in RGB uint8 with pycolab's palette (0-999 colour
  values scaled by 255/1000 and truncated to uint8).

One deliberate difference: the agent is painted above every object. pycolab's Key-to-Door reward
phase paints the door above the agent, so the frame in which the agent stands in the door showed
the door colour at the crop centre; here the centre always shows the agent.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ROWS, COLS = 7, 11  # board size
CROP = 5  # side of the agent-centred crop
NUM_PHASES = 3  # explore, distractor, reward

# Cell codes of the painted board, and their RGB colours (index = code).
FLOOR, WALL, AGENT, APPLE, KEY, DOOR, INDICATOR, RED, GREEN, BLUE = range(10)
PALETTE = np.array(
    [
        (204, 204, 204),  # floor (pycolab background ' ')
        (25, 25, 25),  # wall ('#')
        (228, 148, 109),  # agent ('+')
        (140, 178, 0),  # apple ('a')
        (159, 81, 44),  # key ('k')
        (134, 206, 235),  # door ('d')
        (255, 255, 255),  # key-pickup indicator ('i')
        (255, 0, 0),  # Visual Match colours: pure red, green, blue
        (0, 255, 0),
        (0, 0, 255),
    ],
    dtype=np.uint8,
)

# Actions, as in pycolab's TVT games: 0 = north, 1 = south, 2 = west, 3 = east.
MOVES = ((-1, 0), (1, 0), (0, -1), (0, 1))

# The distractor phase of both games: 22 apple candidate cells ('a'), agent starts at '+'.
DISTRACTOR_ROWS = (
    "###########",
    "#a a a a a#",
    "# a a a a #",
    "#a a a a a#",
    "# a a a a #",
    "#a a + a a#",
    "###########",
)


def parse_rows(rows: tuple[str, ...]) -> tuple[np.ndarray, dict[str, list[tuple[int, int]]]]:
    """Split an ASCII layout into a backdrop (WALL where '#', FLOOR elsewhere) and the cells of
    every other character."""
    if len(rows) != ROWS or any(len(row) != COLS for row in rows):
        raise ValueError(f"a layout must be {ROWS} rows of {COLS} characters")
    backdrop = np.full((ROWS, COLS), FLOOR, dtype=np.int64)
    cells: dict[str, list[tuple[int, int]]] = {}
    for r, row in enumerate(rows):
        for c, char in enumerate(row):
            if char == "#":
                backdrop[r, c] = WALL
            elif char != " ":
                cells.setdefault(char, []).append((r, c))
    return backdrop, cells


DISTRACTOR_BACKDROP, _DISTRACTOR_CELLS = parse_rows(DISTRACTOR_ROWS)
APPLE_CELLS = tuple(_DISTRACTOR_CELLS["a"])  # 22 candidate cells
DISTRACTOR_START = _DISTRACTOR_CELLS["+"][0]


class GridPhaseEnv(gym.Env):
    """Base of the three-phase grid games: phase timer, movement, distractor phase, crop, render.

    Subclasses implement phases 0 (explore) and 2 (reward) through ``_new_episode``,
    ``_start_phase``, ``_blocked``, ``_touch`` and ``_paint_objects``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        lengths: tuple[int, int, int],
        final_reward: float,
        apple_reward: float,
        num_apples: int,
        respawn_every: int,
        flatten: bool,
        render_mode: str | None,
        render_scale: int,
    ):
        names = ("explore_length", "distractor_length", "reward_length")
        for name, value, minimum in zip(names, lengths, (1, 0, 1), strict=True):
            _check_int(name, value, minimum)
        _check_int("num_apples", num_apples, 0, len(APPLE_CELLS))
        _check_int("respawn_every", respawn_every, 0)
        _check_int("render_scale", render_scale, 1)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.lengths = tuple(int(n) for n in lengths)
        self.episode_length = sum(self.lengths)
        self.final_reward = float(final_reward)
        self.apple_reward = float(apple_reward)
        self.num_apples = int(num_apples)
        self.respawn_every = int(respawn_every)
        self.flatten = bool(flatten)
        self.render_mode = render_mode
        self.render_scale = int(render_scale)
        shape = (3 * CROP * CROP,) if self.flatten else (3, CROP, CROP)
        self.observation_space = spaces.Box(0, 255, shape, dtype=np.uint8)
        self.action_space = spaces.Discrete(len(MOVES))

    # ---- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0  # steps taken in the episode
        self._phase = 0
        self._frame = 0  # pycolab's frame counter inside the current phase (0 at phase start)
        self._phase3_reward = 0.0
        self._new_episode(reseeded=seed is not None)
        self._enter_phase(0)
        return self._observation(), {"phase": self._phase}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        if self._t >= self.episode_length:
            raise RuntimeError("step() called after the episode ended; call reset()")
        self._t += 1
        self._frame += 1
        dr, dc = MOVES[int(action)]
        target = (self._agent[0] + dr, self._agent[1] + dc)
        if self._passable(target):
            self._agent = target
        if self._phase == 1:
            reward = self._apple_update()
        else:
            reward = self._touch()
            if self._phase == 2:
                self._phase3_reward += reward
        terminated = False
        if self._frame >= self.lengths[self._phase]:
            if self._phase == NUM_PHASES - 1:
                terminated = True
            else:
                self._enter_phase(self._phase + 1)
        info: dict[str, Any] = {"phase": self._phase}
        if terminated:
            info["success"] = self._phase3_reward > 0.0
            info["outcome"] = self._outcome()
        return self._observation(), float(reward), terminated, False, info

    def render(self):
        """The whole 7x11 board as RGB, each cell ``render_scale`` pixels wide."""
        if self.render_mode != "rgb_array":
            return None
        image = PALETTE[self._paint()]
        return np.repeat(np.repeat(image, self.render_scale, axis=0), self.render_scale, axis=1)

    # ---- phases -----------------------------------------------------------------------------
    def _enter_phase(self, phase: int) -> None:
        # A zero-length distractor phase is skipped, as pycolab's Story skips a chapter that
        # terminates on its first frame.
        while phase < NUM_PHASES - 1 and self.lengths[phase] == 0:
            phase += 1
        self._phase, self._frame = phase, 0
        if phase == 1:
            self._backdrop = DISTRACTOR_BACKDROP
            self._agent = DISTRACTOR_START
            chosen = self.np_random.choice(len(APPLE_CELLS), size=self.num_apples, replace=False)
            self._apples = np.zeros((ROWS, COLS), dtype=bool)
            for index in chosen:
                self._apples[APPLE_CELLS[index]] = True
            # pycolab AppleDrape: frame of the last pick-up, inf for uneaten apples, -1 elsewhere.
            self._last_pickup = np.where(self._apples, np.inf, -1.0)
        else:
            self._start_phase(phase)

    def _apple_update(self) -> float:
        reward = 0.0
        if self._apples[self._agent]:
            self._apples[self._agent] = False
            self._last_pickup[self._agent] = self._frame
            reward = self.apple_reward
        if self.respawn_every:
            due = (self._frame > self._last_pickup + self.respawn_every) & (self._last_pickup >= 0)
            self._apples[due] = True
        return reward

    def _passable(self, cell: tuple[int, int]) -> bool:
        r, c = cell
        if not (0 <= r < ROWS and 0 <= c < COLS) or self._backdrop[r, c] == WALL:
            return False
        return self._phase == 1 or cell not in self._blocked()

    # ---- rendering --------------------------------------------------------------------------
    def _paint(self) -> np.ndarray:
        board = self._backdrop.copy()
        if self._phase == 1:
            board[self._apples] = APPLE
        else:
            self._paint_objects(board)
        board[self._agent] = AGENT
        return board

    def _observation(self) -> np.ndarray:
        padded = np.full((ROWS + CROP - 1, COLS + CROP - 1), FLOOR, dtype=np.int64)
        half = CROP // 2
        padded[half : half + ROWS, half : half + COLS] = self._paint()
        r, c = self._agent
        crop = PALETTE[padded[r : r + CROP, c : c + CROP]]  # [5, 5, 3] HWC, agent at [2, 2]
        chw = np.transpose(crop, (2, 0, 1))  # [3, 5, 5], as the reference wrapper fed torch
        return chw.reshape(-1).copy() if self.flatten else chw.copy()

    # ---- hooks for the two games ------------------------------------------------------------
    def _new_episode(self, reseeded: bool) -> None:
        """Draw the episode's hidden choices from ``self.np_random``."""
        raise NotImplementedError

    def _start_phase(self, phase: int) -> None:
        """Set ``self._backdrop``, ``self._agent`` and the objects of phase 0 or 2."""
        raise NotImplementedError

    def _blocked(self) -> set[tuple[int, int]]:
        """Non-wall cells the agent cannot enter in the current phase."""
        raise NotImplementedError

    def _touch(self) -> float:
        """React to the agent's (new) cell in phase 0 or 2; return the reward."""
        raise NotImplementedError

    def _paint_objects(self, board: np.ndarray) -> None:
        """Paint the visible objects of phase 0 or 2 onto ``board`` (codes, in place)."""
        raise NotImplementedError

    def _outcome(self) -> str:
        """What the agent did, one of ``outcomes`` (the last step's ``info["outcome"]``)."""
        raise NotImplementedError


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
