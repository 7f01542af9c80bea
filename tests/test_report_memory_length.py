"""The memory-length view of ``rllib-shm report`` on synthetic runs: tasks placed by their memory
length, one line per memory of its best success rate (or MMER), env steps to 95 % success (or to a
return threshold) per task and memory, "not reached" at the budget, and the section shown first."""

import numpy as np
import pytest

from rllib_shm.reports.budget import budget
from rllib_shm.reports.collect import Collection, History, RunRecord
from rllib_shm.reports.markdown import render
from rllib_shm.reports.memory_length import (
    families,
    memory_length,
    memory_length_figure,
    memory_length_section,
)
from rllib_shm.reports.table import build_table

CUE = {delay: f"rllib_shm/CueRecall-D{delay}-v0" for delay in (10, 100, 1000)}
FIRST = {level: f"rllib_shm/popgym-RepeatFirst{level}-v0" for level in ("Easy", "Medium")}
SIZES = {"shm": "64", "gru": "256", "mlp": "256"}
STEPS = tuple(1024.0 * i for i in range(1, 9))  # 8 iterations of 1,024 env steps


def record(task, kind, seed, success=None, returns=None):
    returns = returns or tuple(-1.0 + 0.1 * i for i in range(len(STEPS)))
    history = History(tuple(range(1, len(STEPS) + 1)), STEPS, tuple(returns), tuple(success or ()))
    params = {"env.id": task, "module.memory.kind": kind, "module.memory.mem_size": SIZES[kind], "run.seed": str(seed)}
    return RunRecord(f"{task}/{kind}/{seed}", "run", "FINISHED", params, {}, 0, 1, {}, max(returns), history)


def ramp(reach_at: int | None, top: float = 1.0) -> tuple[float, ...]:
    """Success rates that first reach 0.95 at iteration ``reach_at`` (1-based), or stay at ``top`` < 0.95."""
    if reach_at is None:
        return tuple(min(top, 0.1 * i) for i in range(len(STEPS)))
    return tuple(0.5 if i + 1 < reach_at else 0.97 for i in range(len(STEPS)))


# iteration of reaching 95 % per (delay, memory, seed); None: never
REACH = {(10, "shm"): (2, 3), (100, "shm"): (3, 4), (1000, "shm"): (5, None),
         (10, "gru"): (2, 2), (100, "gru"): (None, None), (1000, "gru"): (None, None),
         (10, "mlp"): (None, None), (100, "mlp"): (None, None), (1000, "mlp"): (None, None)}


def cue_runs():
    return [record(CUE[delay], kind, seed, success=ramp(at, top=0.5))
            for (delay, kind), reach in REACH.items() for seed, at in enumerate(reach)]


def test_tasks_are_placed_by_memory_length_and_family():
    assert memory_length(CUE[100]) == ("CueRecall", 101)
    assert memory_length("rllib_shm/popgym-RepeatPreviousMedium-v0") == ("RepeatPrevious", 32)
    assert memory_length("rllib_shm/popgym-RepeatFirstHard-v0") == ("RepeatFirst", 830)
    assert memory_length("rllib_shm/popgym-AutoencodeEasy-v0") is None and memory_length("CartPole-v1") is None
    table = build_table(cue_runs() + [record("rllib_shm/popgym-AutoencodeEasy-v0", "shm", 0)])
    assert families(table) == {"CueRecall": [(11, CUE[10]), (101, CUE[100]), (1001, CUE[1000])]}
    assert memory_length_figure(build_table([record("rllib_shm/popgym-AutoencodeEasy-v0", "shm", 0)])) is None


def test_the_figure_draws_one_line_per_memory_of_its_best_success_against_memory_length():
    table = build_table(cue_runs())
    figure = memory_length_figure(table)
    axis = figure.axes[0]
    lines = {bars.get_label(): bars.lines[0] for bars in axis.containers}  # errorbar: (data line, caps, bars)
    assert set(lines) == {"SHM H64", "GRU 256", "MLP"}
    for kind, label in (("shm", "SHM H64"), ("gru", "GRU 256"), ("mlp", "MLP")):
        xs, ys = lines[label].get_data()
        # beside the length, not on it (below)
        np.testing.assert_allclose(np.asarray(xs, dtype=float), [11, 101, 1001], rtol=0.1)
        expected = [np.mean([max(ramp(at, top=0.5)) for at in REACH[(delay, kind)]]) for delay in (10, 100, 1000)]
        np.testing.assert_allclose(np.asarray(ys, dtype=float), expected)
    assert axis.get_xscale() == "log" and axis.get_ylabel() == "best success rate"
    # memories that score alike stay visible: the lines sit side by side, in the table's order
    firsts = [lines[label].get_data()[0][0] for label in ("SHM H64", "GRU 256", "MLP")]
    assert firsts[0] < firsts[1] < firsts[2] and firsts[1] == pytest.approx(11)
    assert [tick.get_text() for tick in axis.get_xticklabels()] == ["11", "101", "1001"]
    assert not axis.xaxis.get_minorticklocs().size  # no minor tick labels between the lengths


def test_env_steps_to_95_percent_success_per_task_and_memory_or_not_reached():
    table = build_table(cue_runs())
    text = "\n".join(memory_length_section(table, "memory_length.png"))
    rows = {line.split(" | ")[0].strip("| "): [c.strip() for c in line.strip().strip("|").split(" | ")[1:]]
            for line in text.splitlines() if line.startswith("| CueRecall")}
    assert list(rows) == ["CueRecall-D10 (11 steps)", "CueRecall-D100 (101 steps)", "CueRecall-D1000 (1001 steps)"]
    assert rows["CueRecall-D10 (11 steps)"] == ["2,560 ± 512 (2/2)", "2,048 ± 0 (2/2)",
                                               "not reached (0/2, 8,192 steps)"]
    assert rows["CueRecall-D1000 (1001 steps)"][0] == "5,120 (1/2)"  # one seed of two reached it
    assert rows["CueRecall-D100 (101 steps)"][1] == "not reached (0/2, 8,192 steps)"
    assert "![score against memory length](memory_length.png)" in text
    assert "env steps to a success rate of 95 %" in text
    stricter = "\n".join(memory_length_section(table, None, success_level=0.99))
    assert "not reached (0/2, 8,192 steps)" in stricter.split("| CueRecall-D10 (11 steps) |")[1].splitlines()[0]


def test_a_family_without_success_uses_the_mmer_and_the_return_threshold():
    runs = [record(FIRST[level], kind, seed, returns=tuple(np.linspace(-0.5, top, len(STEPS))))
            for level, top in (("Easy", 1.0), ("Medium", 0.5)) for kind in ("shm", "gru") for seed in (0, 1)]
    table = build_table(runs)
    axis = memory_length_figure(table).axes[0]
    assert axis.get_ylabel() == "MMER (best mean return)"
    for bars in axis.containers:
        np.testing.assert_allclose(np.asarray(bars.lines[0].get_data()[0], dtype=float), (50, 414), rtol=0.1)
    assert "no `--threshold` given" in "\n".join(memory_length_section(table, None))
    text = "\n".join(memory_length_section(table, None, threshold=0.9))
    easy = next(line for line in text.splitlines() if line.startswith("| popgym-RepeatFirstEasy (50 steps)"))
    first = 1024.0 * (1 + int(np.argmax(np.linspace(-0.5, 1.0, len(STEPS)) >= 0.9)))
    assert f"{first:,.0f} ± 0 (2/2)" in easy
    assert "not reached" in next(line for line in text.splitlines() if line.startswith("| popgym-RepeatFirstMedium"))


def test_the_memory_length_section_comes_first_in_the_report():
    runs = cue_runs()
    table = build_table(runs)
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs))
    markdown = render(collection, table, None, budget(collection, table), {},
                      lead=memory_length_section(table, "memory_length.png"))
    assert markdown.index("## Memory length") < markdown.index("## MMER") < markdown.index("## Success rate")


def test_without_memory_lengths_the_report_is_unchanged():
    runs = [record("rllib_shm/popgym-AutoencodeEasy-v0", "shm", 0)]
    table = build_table(runs)
    collection = Collection("synthetic", "sqlite:///x.db", tuple(runs))
    assert memory_length_section(table, None) == []
    assert "## Memory length" not in render(collection, table, None, budget(collection, table), {})


def test_a_cell_whose_runs_all_failed_says_so_in_the_table_and_the_legend():
    failed = [RunRecord(f"{CUE[1000]}/shm/{seed}/failed", "run", "FAILED",
                        {"env.id": CUE[1000], "module.memory.kind": "shm", "module.memory.mem_size": "64",
                         "run.seed": str(seed)}, {}, 0, 1, {}, float("nan"), History((), (), (), ()))
              for seed in (0, 1)]
    runs = [run for run in cue_runs()
            if not (run.params["env.id"] == CUE[1000] and run.params["module.memory.kind"] == "shm")]
    table = build_table(runs + failed)
    text = "\n".join(memory_length_section(table, None))
    d1000 = next(line for line in text.splitlines() if line.startswith("| CueRecall-D1000 (1001 steps)"))
    assert d1000.split(" | ")[1] == "no finished run (2 failed)"
    labels = {bars.get_label() for bars in memory_length_figure(table).axes[0].containers}
    assert "SHM H64 (no point at 1001: 2 failed)" in labels and "GRU 256" in labels


def test_several_families_share_one_legend_and_each_panel_names_its_missing_points():
    failed = [RunRecord(f"{FIRST['Medium']}/gru/{seed}/failed", "run", "FAILED",
                        {"env.id": FIRST["Medium"], "module.memory.kind": "gru", "module.memory.mem_size": "256",
                         "run.seed": str(seed)}, {}, 0, 1, {}, float("nan"), History((), (), (), ()))
              for seed in (0, 1)]
    first = [record(FIRST[level], kind, seed) for level in FIRST for kind in ("shm", "gru", "mlp") for seed in (0, 1)
             if (level, kind) != ("Medium", "gru")]
    table = build_table(cue_runs() + first + failed)
    figure = memory_length_figure(table)
    cue, repeat = figure.axes
    assert cue.get_ylabel() == "best success rate" and repeat.get_ylabel() == "MMER (best mean return)"
    assert not cue.get_legend() and not repeat.get_legend()  # one legend for the figure, each memory once
    legend, = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["SHM H64", "GRU 256", "MLP"]
    # a memory keeps its colour in every panel
    colours = [{bars.get_label().split(" (")[0]: bars.lines[0].get_color() for bars in axis.containers}
               for axis in (cue, repeat)]
    assert colours[0] == colours[1]
    assert repeat.get_title().splitlines()[1:] == ["GRU 256 (no point at 414: 2 failed)"]
    assert cue.get_title() == "CueRecall: mean ± std over seeds"
