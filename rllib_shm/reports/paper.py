"""The SHM paper's published numbers and budgets, in one place, with their source.

Le et al., *Revitalizing Memory-Augmented Agents for Reinforcement Learning*, ICLR 2025, as quoted
in the project's shared design (SHM.md §5, "quoted second-hand"). POPGym scores are MMER × 100
(POPGym's metric: per run, the maximum over training iterations of the mean episodic return),
mean ± std over 3 seeds; the report puts the project's MMER on the same ×100 scale beside them.

    >>> paper_score("rllib_shm/popgym-AutoencodeEasy-v0", "shm")
    PaperScore(mean=49.5, std=23.3)
    >>> paper_score("rllib_shm/CueRecall-D5-v0", "shm") is None
    True
    >>> paper_budget("rllib_shm/popgym-BattleshipHard-v0").env_steps_per_trial
    15000000
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("Le et al., Revitalizing Memory-Augmented Agents for Reinforcement Learning (ICLR 2025), "
          "POPGym Table 1; quoted in the project's design notes (SHM.md §5)")
SCALE = 100  # the paper's POPGym table is MMER × 100

#: the paper's memory names for the project's memory kinds
PAPER_MEMORY = {"shm": "SHM", "gru": "GRU", "ffm": "FFM"}


@dataclass(frozen=True)
class PaperScore:
    mean: float  # MMER × 100, mean over 3 seeds
    std: float | None  # over the same seeds (None: not quoted)


def _popgym(task: str) -> str:
    return f"rllib_shm/popgym-{task}-v0"


#: the 12 POPGym tasks of the paper's Table 1
POPGYM_TASKS = tuple(_popgym(f"{game}{level}") for game in ("Autoencode", "Battleship", "Concentration",
                                                            "RepeatPrevious")
                     for level in ("Easy", "Medium", "Hard"))

#: (task id, memory kind) -> the paper's score (only the cells SHM.md §5 quotes)
POPGYM_TABLE1: dict[tuple[str, str], PaperScore] = {
    (_popgym("AutoencodeEasy"), "shm"): PaperScore(49.5, 23.3),
    (_popgym("AutoencodeEasy"), "ffm"): PaperScore(-32.7, 0.6),
    (_popgym("RepeatPreviousEasy"), "gru"): PaperScore(99.9, 0.0),
    (_popgym("RepeatPreviousEasy"), "shm"): PaperScore(88.9, 11.1),
    (_popgym("RepeatPreviousHard"), "shm"): PaperScore(-19.4, 9.9),
    (_popgym("ConcentrationEasy"), "shm"): PaperScore(-1.9, None),
    (_popgym("ConcentrationEasy"), "ffm"): PaperScore(10.7, None),
}

#: memory kind -> the paper's average over its 12 POPGym tasks
POPGYM_AVERAGE: dict[str, PaperScore] = {
    "shm": PaperScore(-5.1, 6.3),
    "gru": PaperScore(-28.4, 1.3),
    "ffm": PaperScore(-24.2, 1.2),
}


@dataclass(frozen=True)
class PaperBudget:
    family: str
    algorithm: str
    env_steps_per_trial: int | None  # None: not published (or not one number)
    seeds: int | None
    text: str  # as it reads in the report


POPGYM_BUDGET = PaperBudget("POPGym", "PPO (RLlib)", 15_000_000, 3, "15M env steps per trial, 3 seeds")
CREDIT_BUDGET = PaperBudget("credit assignment (Visual Match, Key-to-Door)", "SAC-Discrete", None, None,
                            "not published (the paper's budget for these tasks is unreleased)")
# SHM.md quotes "0.51M / 1.08M env steps" for "Wind, Point Robot": paired in that order
WIND_BUDGET = PaperBudget("meta-RL (Wind)", "SAC", 510_000, 5, "0.51M env steps per trial (as quoted), 5 seeds")
POINT_ROBOT_BUDGET = PaperBudget("meta-RL (Point Robot)", "SAC", 1_080_000, 5,
                                 "1.08M env steps per trial (as quoted), 5 seeds")

_CREDIT_TASKS = {f"rllib_shm/{task}-L{length}-v0" for task in ("VisualMatch", "KeyToDoor") for length in (250, 500)}
_META_BUDGETS = {"rllib_shm/Wind-v0": WIND_BUDGET, "rllib_shm/PointRobot-v0": POINT_ROBOT_BUDGET}


def paper_score(task: str, memory_kind: str) -> PaperScore | None:
    """The paper's Table-1 score (× 100) of a memory on a task, where SHM.md quotes one."""
    return POPGYM_TABLE1.get((task, memory_kind))


def paper_budget(task: str) -> PaperBudget | None:
    """The paper's budget for the family of ``task``; None for tasks the paper did not run.

    >>> paper_budget("rllib_shm/Wind-v0").env_steps_per_trial, paper_budget("rllib_shm/PointRobot-v0").text
    (510000, '1.08M env steps per trial (as quoted), 5 seeds')
    """
    if task in POPGYM_TASKS:
        return POPGYM_BUDGET
    if task in _CREDIT_TASKS:
        return CREDIT_BUDGET
    return _META_BUDGETS.get(task)
