"""``rllib-shm envs``: list the registered environments (id, spaces, episode length, origin).

Builds each listed env once to read its spaces; imports neither ray nor torch.
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np

import envs

COLUMNS = ("id", "observation", "action", "length", "origin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "filter", nargs="?", default="", help="list only ids containing this text (case-insensitive)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def run(args: argparse.Namespace) -> int:
    selected = [spec for spec in envs.spec_table() if args.filter.lower() in spec.id.lower()]
    if not selected:
        ids = [spec.id for spec in envs.spec_table()]
        raise ValueError(
            f"no environment id contains {args.filter!r}; close matches: "
            f"{envs.close_matches(args.filter, ids)}"
        )
    rows = [describe(spec) for spec in selected]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cells = [
        (r["id"], r["observation_space"], r["action_space"], r["episode_length"], r["origin"]) for r in rows
    ]
    widths = [max(len(str(row[i])) for row in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    for row in [COLUMNS, *cells]:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    noun = "environment" if len(rows) == 1 else "environments"
    print(f"\n{len(rows)} {noun}. Episode length: exact, or the maximum when marked <=.")
    return 0


def describe(spec: envs.EnvSpec) -> dict[str, object]:
    """One table row, with the spaces of a freshly built env."""
    env = envs.make(spec.id)
    try:
        observation_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    return {
        "id": spec.id,
        "observation_space": space_text(observation_space),
        "action_space": space_text(action_space),
        "episode_length": spec.length_text,
        "origin": spec.origin,
        "description": spec.description,
        "entry_point": spec.entry_point,
        "kwargs": dict(spec.kwargs),
    }


def space_text(space: gym.Space) -> str:
    """A short space description: bounds only when they are the same for every entry."""
    if isinstance(space, gym.spaces.Box):
        low, high = np.unique(space.low), np.unique(space.high)
        bounds = f"{low[0]:g}, {high[0]:g}, " if low.size == 1 and high.size == 1 else ""
        return f"Box({bounds}{space.shape}, {space.dtype})"
    if isinstance(space, gym.spaces.MultiDiscrete):
        return f"MultiDiscrete({space.nvec.tolist()})"
    return str(space)
