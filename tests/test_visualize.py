"""Memory drawings: files, deterministic sizes, GIF frames, the vanishing measure, phases, the retention of the
cue, input checks.

T time, H memory size. Recordings are synthetic: a pattern written at t = 2 and kept (C ≈ 1, one row < 1); with
phases, a cue written into known columns that are kept while the others decay. One episode is recorded from an
untrained SHM acting in Visual Match.
"""

import json
import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image

from rllib_shm.drawing import MemoryRecording, default_steps, draw_memory, vanishing_fraction
from rllib_shm.drawing import figures as visualize
from rllib_shm.drawing.retention import cue_column_count, retention, writes
from rllib_shm.drawing.timeline import phase_spans, phase_steps

T, H, DPI = 30, 8, 50


def _width(panels: int, dpi: int = DPI) -> int:
    return round(dpi * (2.0 * panels + 1.0))  # the documented formula


def _height(dpi: int = DPI) -> int:
    return round(dpi * 3.6)


def _shm_recording(num_steps: int = T, size: int = H) -> MemoryRecording:
    """M_t = 0 before t = 2, then the pattern P kept under C (1 everywhere, 0.9 on row 0)."""
    pattern = np.outer(np.arange(size) - size / 2, np.cos(np.arange(size)))
    calibration = np.ones((num_steps, size, size))
    calibration[:, 0, :] = 0.9
    memory = np.zeros((num_steps, size, size))
    for t in range(2, num_steps):
        memory[t] = pattern if t == 2 else memory[t - 1] * calibration[t]
    rewards = np.zeros(num_steps)
    rewards[-1] = 1.0
    return MemoryRecording(memory, calibration, rewards, title="synthetic SHM")


@pytest.fixture(scope="module")
def shm_drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[MemoryRecording, dict[str, Path]]:
    recording = _shm_recording()
    return recording, draw_memory(recording, tmp_path_factory.mktemp("shm") / "new_dir", dpi=DPI)


def test_shm_files_exist_with_documented_sizes(shm_drawn):
    _, paths = shm_drawn
    assert set(paths) == {"memory_steps.png", "calibration_steps.png", "memory.gif", "vanishing.png", "summary.json"}
    for path in paths.values():
        assert path.is_file() and path.stat().st_size > 0, path
    panels = len(default_steps(T))
    assert mpimg.imread(paths["memory_steps.png"]).shape[:2] == (_height(), _width(panels))
    assert mpimg.imread(paths["calibration_steps.png"]).shape[:2] == (_height(), _width(panels))
    assert mpimg.imread(paths["vanishing.png"]).shape[:2] == (round(DPI * 4.0), round(DPI * 6.0))
    with Image.open(paths["memory.gif"]) as gif:
        assert gif.n_frames == T  # every step, one frame each
        assert gif.size == (_width(2), _height())  # M and C side by side


def test_shm_summary(shm_drawn):
    recording, paths = shm_drawn
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["T"] == T and summary["H"] == H and summary["kind"] == "matrix"
    assert summary["steps"] == default_steps(T) and summary["gif_steps"] == list(range(T))
    assert summary["max_abs_memory"] == pytest.approx(np.abs(recording.memory).max())
    assert summary["non_finite"] == 0
    assert summary["episode_return"] == 1.0
    assert summary["files"] == list(paths)
    fraction = np.asarray(summary["vanishing_fraction"])
    np.testing.assert_allclose(fraction, vanishing_fraction(recording.calibration))
    np.testing.assert_allclose(fraction, 1.0 / H)  # row 0 (C = 0.9) is below 1 from t = 0, the rest is exactly 1
    # C's colours zoom to the entries' spread: 1 ± 0.1 (row 0 at 0.9), not C's whole range 0..2
    assert summary["color_range_calibration"] == pytest.approx([0.9, 1.1])


def test_retention_panel_a_zooms_to_the_calibration_it_draws():
    """A trained SHM keeps C within a few % of 1: on C's whole range 0..2 its panel (a) would be flat."""
    from matplotlib.figure import Figure

    from rllib_shm.drawing.retention import draw_retention

    rng = np.random.default_rng(0)
    calibration = 1.0 + 0.03 * rng.uniform(-1, 1, size=(T, H, H))
    memory = np.zeros((T, H, H))
    for t in range(T):
        memory[t] = (memory[t - 1] if t else 0.0) * calibration[t] + (rng.normal(size=(H, H)) if t < 5 else 0.0)
    held = retention(memory, calibration, cue_steps=5)
    figure = Figure()
    draw_retention(figure, held, phase_spans(np.repeat([0, 1], [5, T - 5])))
    low, high = figure.axes[0].get_ylim()
    spread = np.abs(np.concatenate([held.calibration_quartiles.ravel(), held.calibration_mean.ravel()]) - 1).max()
    assert 1 - high == pytest.approx(low - 1) and spread <= high - 1 <= 1.1 * spread + 0.011
    assert "y zoomed to 1 ±" in figure.axes[0].get_title()


def test_vanishing_fraction_hand_computed():
    np.testing.assert_array_equal(vanishing_fraction(np.full((5, 3, 3), 0.5)), np.ones(5))
    np.testing.assert_array_equal(vanishing_fraction(np.full((5, 3, 3), 1.5)), np.zeros(5))
    np.testing.assert_array_equal(vanishing_fraction(np.ones((5, 3, 3))), np.zeros(5))  # = 1 keeps: not below
    # four entries over three steps; cumulative products in the comments
    calibration = np.array([
        [[0.5, 1.0], [1.5, 0.9]],  # 0.5 | 1 | 1.5   | 0.9
        [[1.9, 1.0], [0.5, 0.9]],  # .95 | 1 | 0.75  | 0.81
        [[1.9, 1.0], [0.5, 0.9]],  # 1.8 | 1 | 0.375 | 0.729
    ])
    np.testing.assert_allclose(vanishing_fraction(calibration), [0.5, 0.75, 0.5])


def test_vanishing_fraction_survives_underflow():
    """0.5^1100 underflows float64 to 0; in log space 1.99^k brings the product back above 1."""
    down, up = 1100, 1200
    calibration = np.concatenate([np.full((down, 1, 1), 0.5), np.full((up, 1, 1), 1.99)])
    assert np.prod(calibration[:, 0, 0]) == 0.0  # the naive product is lost
    crossing = math.ceil(-down * math.log(0.5) / math.log(1.99))  # first k with 1.99^k · 0.5^1100 > 1
    expected = np.r_[np.ones(down + crossing - 1), np.zeros(up - crossing + 1)]
    np.testing.assert_array_equal(vanishing_fraction(calibration), expected)


@pytest.mark.parametrize("num_steps", [*range(1, 40), 299, 300, 301, 1000])
@pytest.mark.parametrize("count", [2, 3, 8, 300])
def test_default_steps(num_steps, count):
    steps = default_steps(num_steps, count)
    assert steps == sorted(set(steps))
    assert steps[0] == 0 and steps[-1] == num_steps - 1
    assert len(steps) == min(count, num_steps)
    if len(steps) > 1:
        gaps = np.diff(steps)
        assert gaps.max() - gaps.min() <= 1  # evenly spaced up to rounding


def test_default_steps_rejects():
    with pytest.raises(ValueError, match="num_steps"):
        default_steps(0)
    with pytest.raises(ValueError, match="count"):
        default_steps(10, 1)


def test_vector_state_and_frame_cap(tmp_path, monkeypatch):
    """A [T, H] state: one time × units heatmap, no calibration files; non-finite values are counted."""
    monkeypatch.setattr(visualize, "MAX_FRAMES", 10)  # the 300-frame cap, scaled down
    num_steps = 25
    state = np.sin(np.arange(num_steps)[:, None] * np.arange(1, 6)[None, :] / 5.0)
    state[3, 1], state[4, 2] = np.nan, np.inf
    paths = draw_memory(MemoryRecording(state, None, np.zeros(num_steps)), tmp_path, dpi=DPI)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.gif", "memory_steps.png", "summary.json"]
    assert mpimg.imread(paths["memory_steps.png"]).shape[:2] == (_height(), _width(3))
    with Image.open(paths["memory.gif"]) as gif:
        assert gif.n_frames == 10 and gif.size == (_width(3), _height())
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["kind"] == "vector" and summary["vanishing_fraction"] is None
    assert summary["gif_steps"] == default_steps(num_steps, 10)
    assert summary["non_finite"] == 2 and summary["non_finite_by_field"]["memory"] == 2


def test_explicit_steps_are_sorted_unique(tmp_path):
    recording = _shm_recording(num_steps=6, size=2)
    paths = draw_memory(recording, tmp_path, steps=[5, 2, np.int64(5)], dpi=40)
    assert mpimg.imread(paths["memory_steps.png"]).shape[:2] == (_height(40), _width(2, 40))
    assert json.loads(paths["summary.json"].read_text())["steps"] == [2, 5]


@pytest.mark.parametrize("steps", [[0, T], [-1], [2.5], []])
def test_steps_out_of_range(tmp_path, steps):
    match = {T: rf"step {T} outside the valid range \[0, {T - 1}\]", -1: r"step -1 outside", 2.5: "2.5"}
    with pytest.raises(ValueError, match=match.get(steps[-1], "steps") if steps else "steps"):
        draw_memory(_shm_recording(), tmp_path, steps=steps)
    assert not any(tmp_path.iterdir())


def test_refuses_to_overwrite(tmp_path):
    existing = tmp_path / "vanishing.png"
    existing.write_bytes(b"a user's result")
    with pytest.raises(ValueError, match="vanishing.png"):
        draw_memory(_shm_recording(), tmp_path)
    assert existing.read_bytes() == b"a user's result"
    assert [p.name for p in tmp_path.iterdir()] == ["vanishing.png"]  # nothing else written either


def test_bad_shapes_name_the_field():
    memory = np.zeros((T, H, H))
    with pytest.raises(ValueError, match=r"^memory: got shape \(30, 8, 7\)"):
        MemoryRecording(np.zeros((T, H, H - 1)), None)
    with pytest.raises(ValueError, match=r"^memory: got shape \(30,\)"):
        MemoryRecording(np.zeros(T), None)
    with pytest.raises(ValueError, match=r"^calibration: got shape \(30, 8, 4\), expected \[T, H, H\] = \(30, 8, 8\)"):
        MemoryRecording(memory, np.ones((T, H, 4)))
    with pytest.raises(ValueError, match=r"^calibration: .*vector state"):
        MemoryRecording(np.zeros((T, H)), np.ones((T, H)))
    with pytest.raises(ValueError, match=r"^rewards: got shape \(29,\), expected \[T\] = \(30,\)"):
        MemoryRecording(memory, None, np.zeros(T - 1))
    with pytest.raises(ValueError, match=r"^memory: got dtype"):
        MemoryRecording(np.full((T, H), "x"), None)


# ---- phases and the retention of the cue ----------------------------------------------------------------------
# A Visual-Match-like episode: phases 0 (cue, 15 steps), 1 (distractor, 5), 2 (final, 10); H = 16, so K = 2.
CUE, HOLD, FINAL, SIZE = 15, 5, 10, 16
PHASES = np.r_[[0] * CUE, [1] * HOLD, [2] * FINAL]
NAMES = {0: "cue", 1: "distractor", 2: "reward"}


def _cue_recording(phases=PHASES, names=NAMES) -> tuple[MemoryRecording, np.ndarray]:
    """The cue phase writes 3 at M[0, 3] (t = 0), 4 at M[1, 9] (t = 5) and 0.25 down column 5 (t = 2); columns 3
    and 9 are kept (C = 1) through the cue and distractor phases and halved (C = 0.5) in the final phase, all
    other columns decay (C = 0.8) throughout. The distractor writes 12 at M[2, 3] (t = 17) and noise elsewhere.
    Returns the recording and the writes U [T, H, H]."""
    num_steps = CUE + HOLD + FINAL
    rng = np.random.default_rng(0)
    calibration = np.full((num_steps, SIZE, SIZE), 0.8)
    calibration[:, :, [3, 9]] = 1.0
    calibration[CUE + HOLD:, :, [3, 9]] = 0.5
    update = np.zeros((num_steps, SIZE, SIZE))
    update[0, 0, 3], update[5, 1, 9], update[2, :, 5] = 3.0, 4.0, 0.25
    others = [j for j in range(SIZE) if j not in (3, 9)]
    update[CUE:CUE + HOLD, :, others] = rng.normal(size=(HOLD, SIZE, len(others)))
    update[17, 2, 3] = 12.0
    memory, held = np.zeros_like(update), np.zeros((SIZE, SIZE))
    for t in range(num_steps):
        held = held * calibration[t] + update[t]
        memory[t] = held
    return MemoryRecording(memory, calibration, np.zeros(num_steps), "cue", phases, names), update


@pytest.fixture(scope="module")
def cue_drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[str, Path]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(visualize, "MAX_FRAMES", 4)  # the GIF is tested above; keep this one short
        paths = draw_memory(_cue_recording()[0], tmp_path_factory.mktemp("cue"), dpi=DPI)
    return json.loads(paths["summary.json"].read_text()), paths


@pytest.fixture
def few_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short GIFs for tests about other files (drawing all frames is most of a drawing's time)."""
    monkeypatch.setattr(visualize, "MAX_FRAMES", 4)


def test_writes_are_recovered_from_the_recording():
    recording, update = _cue_recording()
    np.testing.assert_allclose(writes(recording.memory, recording.calibration), update, atol=1e-12)
    np.testing.assert_allclose(writes(recording.memory, recording.calibration, CUE), update[:CUE], atol=1e-12)


def test_cue_columns_and_retention_numbers(cue_drawn):
    summary, _ = cue_drawn
    held = summary["retention"]
    assert held["K"] == 2 == cue_column_count(SIZE) and held["cue_columns"] == [3, 9]  # energies 9, 16 beat 1
    assert held["cue_steps"] == [0, CUE - 1] and held["hold_steps"] == [CUE, CUE + HOLD - 1]
    assert held["final_start"] == CUE + HOLD
    assert held["cue_write_share"] == pytest.approx(25 / 26)
    assert held["mean_calibration_hold"] == pytest.approx({"cue": 1.0, "other": 0.8})
    assert held["median_log_product_end_of_hold"] == pytest.approx({"cue": 0.0, "other": (CUE + HOLD) * math.log(0.8)})
    # ‖cue part‖: 5 at the end of the cue phase, 13 after the distractor's write of 12; halved at the final start
    assert held["retained_fraction_at_final_start"] == pytest.approx(13 * 0.5 / 5)
    assert held["retained_fraction_at_end"] == pytest.approx(13 * 0.5**FINAL / 5)
    assert held["carried_fraction_at_final_start"] == pytest.approx(0.5)  # the calibration alone
    assert held["carried_fraction_at_end"] == pytest.approx(0.5**FINAL)
    assert summary["retention_skipped"] is None


def test_retention_curves_hand_computed():
    recording, _ = _cue_recording()
    result = retention(recording.memory, recording.calibration, CUE, CUE + HOLD)
    np.testing.assert_allclose(result.calibration_mean[0], np.r_[np.ones(CUE + HOLD), np.full(FINAL, 0.5)])
    np.testing.assert_allclose(result.calibration_mean[1], 0.8)
    np.testing.assert_allclose(result.calibration_quartiles[1], 0.8)
    expected_log = np.r_[np.zeros(CUE + HOLD), np.log(0.5) * np.arange(1, FINAL + 1)]
    np.testing.assert_allclose(result.log_product_median[0], expected_log, atol=1e-12)
    np.testing.assert_allclose(result.log_product_median[1], np.log(0.8) * np.arange(1, CUE + HOLD + FINAL + 1))
    assert np.isnan(result.carried[: CUE - 1]).all() and result.carried[CUE - 1] == 1.0
    np.testing.assert_allclose(result.retained[[0, 4, 5, CUE - 1, 16, 17]], np.r_[3, 3, 5, 5, 5, 13] / 5)


def test_retention_without_cue_content_is_undefined_not_a_number():
    recording, _ = _cue_recording()
    summary = retention(np.zeros_like(recording.memory), recording.calibration, CUE, CUE + HOLD).summary()
    assert summary["cue_columns"] == [0, 1]  # no write energy anywhere: the lowest indices
    assert summary["cue_write_share"] is None and summary["retained_fraction_at_end"] is None
    assert summary["carried_fraction_at_final_start"] is None
    # the cue columns are now 0 and 1 (C = 0.8); columns 3 and 9 (C = 1) are among the 14 others
    assert summary["mean_calibration_hold"] == pytest.approx({"cue": 0.8, "other": (12 * 0.8 + 2 * 1.0) / 14})


def test_phase_aware_files_sizes_and_steps(cue_drawn):
    summary, paths = cue_drawn
    assert list(paths) == ["memory_steps.png", "calibration_steps.png", "memory.gif", "vanishing.png",
                           "retention.png", "summary.json"]
    assert summary["files"] == list(paths)
    # first and last of the cue and final phases, the distractor spread in between: 8 panels
    assert summary["steps"] == [0, 14, 15, 16, 18, 19, 20, 29]
    for name in ("memory_steps.png", "calibration_steps.png"):
        assert mpimg.imread(paths[name]).shape[:2] == (_height(), _width(8))
    assert mpimg.imread(paths["retention.png"]).shape[:2] == (round(DPI * 8.0), round(DPI * 7.0))
    assert mpimg.imread(paths["vanishing.png"]).shape[:2] == (round(DPI * 4.0), round(DPI * 6.0))
    assert summary["phases"] == [{"phase": 0, "label": "phase 0 (cue)", "steps": [0, 14]},
                                 {"phase": 1, "label": "phase 1 (distractor)", "steps": [15, 19]},
                                 {"phase": 2, "label": "phase 2 (reward)", "steps": [20, 29]}]


@pytest.mark.parametrize("lengths", [(15, 100, 10), (15, 250, 10), (10, 5, 3), (1, 1, 1), (3, 40), (7,), (1, 30, 1)])
@pytest.mark.parametrize("count", [2, 3, 4, 5, 8, 32])
def test_phase_steps(lengths, count):
    spans = phase_spans(np.repeat(np.arange(len(lengths)), lengths))
    num_steps = sum(lengths)
    steps = phase_steps(spans, count)
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == num_steps - 1
    assert len(steps) <= count
    if len(lengths) > 1 and count >= 4:
        assert {spans[0].stop, spans[-1].start} <= set(steps)  # the cue phase's last, the final phase's first
        assert len(steps) == min(count, num_steps)  # no panel left unused


def test_phase_labels_without_names_and_cue_steps_without_phases(tmp_path, few_frames):
    recording, _ = _cue_recording(names=None)
    assert [s.label for s in recording.spans] == ["phase 0", "phase 1", "phase 2"]
    plain = MemoryRecording(recording.memory, recording.calibration)  # no phases: the cue window is given
    paths = draw_memory(plain, tmp_path / "given", dpi=DPI, cue_steps=CUE)
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["steps"] == default_steps(CUE + HOLD + FINAL) and summary["phases"] is None
    held = summary["retention"]
    assert held["cue_columns"] == [3, 9] and held["final_start"] is None
    assert held["hold_steps"] == [CUE, CUE + HOLD + FINAL - 1] and held["retained_fraction_at_final_start"] is None
    assert held["retained_fraction_at_end"] == pytest.approx(13 * 0.5**FINAL / 5)
    assert mpimg.imread(paths["retention.png"]).shape[:2] == (round(DPI * 8.0), round(DPI * 7.0))


def test_no_retention_without_a_cue_phase(tmp_path, few_frames):
    recording, _ = _cue_recording()
    cases = {"single": (MemoryRecording(recording.memory, recording.calibration, phases=np.zeros(30, int)),
                        "a single phase"),
             "vector": (MemoryRecording(recording.memory[:, 0], None, phases=PHASES), "needs a matrix memory")}
    for name, (single, reason) in cases.items():
        paths = draw_memory(single, tmp_path / name, dpi=DPI)
        summary = json.loads(paths["summary.json"].read_text())
        assert "retention.png" not in paths and summary["retention"] is None
        assert reason in summary["retention_skipped"]
    assert "memory_steps.png" in paths  # the vector state is drawn with its phases marked


def test_shm_without_phases_is_unchanged(shm_drawn):
    _, paths = shm_drawn
    summary = json.loads(paths["summary.json"].read_text())
    assert summary["phases"] is None and summary["retention"] is None
    assert "no cue phase known" in summary["retention_skipped"]
    assert not (paths["summary.json"].parent / "retention.png").exists()


def test_refuses_to_overwrite_retention(tmp_path, few_frames):
    existing = tmp_path / "retention.png"
    existing.write_bytes(b"a user's result")
    with pytest.raises(ValueError, match="retention.png"):
        draw_memory(_cue_recording()[0], tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["retention.png"]
    draw_memory(_shm_recording(), tmp_path / "no_phases", dpi=DPI)  # no retention.png to write: no conflict


def test_bad_phases_and_cue_steps(tmp_path):
    memory, calibration = np.zeros((T, H, H)), np.ones((T, H, H))
    bad = {r"^phases: got shape \(29,\), expected \[T\] = \(30,\)": np.zeros(T - 1, int),
           r"^phases: got dtype float64": np.zeros(T),
           r"^phases: got dtype bool": np.zeros(T, bool),
           r"^phases: got dtype object": [0] * (T - 1) + [None],
           r"^phases: got -1, expected phase ids ≥ 0": np.r_[np.zeros(T - 1, int), -1]}
    for message, phases in bad.items():
        with pytest.raises(ValueError, match=message):
            MemoryRecording(memory, calibration, phases=phases)
    for names in ({0: 1}, {-1: "cue"}, {"0": "cue"}, "cue", 3):
        with pytest.raises(ValueError, match="^phase_names: got"):
            MemoryRecording(memory, calibration, phases=np.zeros(T, int), phase_names=names)
    assert MemoryRecording(memory, None, phases=[0] * T, phase_names=["cue"]).phase_names == {0: "cue"}
    recording = MemoryRecording(memory, calibration)
    for cue_steps, message in ((0, r"cue_steps must be in \[1, T-1\] = \[1, 29\], got 0"), (T, "got 30"),
                               (True, "expected an integer"), (2.0, "expected an integer")):
        with pytest.raises(ValueError, match=message):
            draw_memory(recording, tmp_path, cue_steps=cue_steps)
    with pytest.raises(ValueError, match="needs a matrix memory with calibration"):
        draw_memory(MemoryRecording(memory[:, 0], None), tmp_path, cue_steps=3)
    assert not any(tmp_path.iterdir())


def test_visual_match_episode_records_phases_and_draws(tmp_path, few_frames):
    """An untrained tiny SHM acting in Visual Match (L = 5): the phases of the 30 steps are recorded, the writes
    recovered from M and C equal the module's own U_t (the episode starts at reset from M = 0), and the drawings
    include the retention of the cue phase."""
    import gymnasium as gym
    import torch

    from rllib_shm.memory import MemoryConfig
    from rllib_shm.rllib import make_env
    from rllib_shm.rllib.module import MemoryRLModule
    from rllib_shm.rllib.module_config import ModuleConfig
    from rllib_shm.runs.episodes import EpisodeLog, run_episodes

    env = make_env("rllib_shm/VisualMatch-L5-v0")
    config = ModuleConfig(memory=MemoryConfig(kind="shm", mem_size=16, num_thetas=16), max_seq_len=30,
                          memory_output=16, encoder_hiddens=(16,), head_hiddens=(16,))
    torch.manual_seed(0)  # parameter init only
    module = MemoryRLModule(observation_space=env.observation_space, action_space=gym.spaces.Discrete(4),
                            model_config=config.to_model_config())
    log = EpisodeLog(keep=("memory", "calibration", "update"))
    result = run_episodes(module, env, 3, seed=0, record=log)
    env.close()
    assert result["lengths"] == [30, 30, 30]
    np.testing.assert_array_equal(log.phase_array(), PHASES)
    recording = log.recording("untrained SHM")
    assert recording.phase_names == NAMES and recording.memory.shape == (30, 16, 16)
    np.testing.assert_allclose(writes(recording.memory, recording.calibration), log.stacked("update"),
                               rtol=1e-4, atol=1e-5)
    paths = draw_memory(recording, tmp_path, dpi=DPI)
    summary = json.loads(paths["summary.json"].read_text())
    assert "retention.png" in paths and len(summary["retention"]["cue_columns"]) == 2
    assert [span["steps"] for span in summary["phases"]] == [[0, 14], [15, 19], [20, 29]]
    assert summary["steps"] == [0, 14, 15, 16, 18, 19, 20, 29]
    # the vanishing measure of every episode (the paper's is over 100): the first is the one drawn
    assert len(log.vanishing) == 3 and not np.array_equal(log.vanishing[1], log.vanishing[2])
    np.testing.assert_array_equal(log.vanishing[0], vanishing_fraction(recording.calibration))
    assert summary["vanishing_episodes"] == 3
    np.testing.assert_allclose(summary["vanishing_fraction_episode_mean"], np.mean(log.vanishing, axis=0))


def test_bad_vanishing_episodes_name_the_field():
    recording = _shm_recording()
    for value, message in ((np.zeros(3), "expected a non-empty sequence"), ([], "expected a non-empty sequence"),
                           ([np.zeros((2, 2))], r"vanishing_episodes\[0\]: got shape \(2, 2\)"),
                           ([np.zeros(3), np.array([0.5, 1.5])], r"vanishing_episodes\[1\].*fractions in \[0, 1\]")):
        with pytest.raises(ValueError, match=message):
            MemoryRecording(recording.memory, recording.calibration, vanishing_episodes=value)
    with pytest.raises(ValueError, match="needs a calibration"):
        MemoryRecording(recording.memory[:, 0], None, vanishing_episodes=[np.zeros(T)])


# ---- every PNG reads without the documentation ----------------------------------------------------------------
def _drawn_figures(recording: MemoryRecording, out_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """file name → the matplotlib Figure ``draw_memory`` saved as that PNG."""
    from matplotlib.figure import Figure

    figures, save = {}, Figure.savefig

    def recording_save(fig, target, *args, **kwargs):
        if isinstance(target, str | Path) and str(target).endswith(".png"):
            figures[Path(target).name] = fig
        return save(fig, target, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_save)
    monkeypatch.setattr(visualize, "MAX_FRAMES", 2)
    draw_memory(recording, out_dir, dpi=DPI)
    return figures


def _texts(fig) -> list:
    from matplotlib.text import Text

    return [text for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()]


@pytest.mark.parametrize("kind", ["shm", "vector"])
def test_every_png_is_labelled_captioned_and_readable(tmp_path, monkeypatch, kind):
    """Axis labels name what is drawn, phase names appear, a "Look for:" caption is the bottom line, no text
    is below 8 pt and only y-axis labels are rotated (issue 24: retention.png was tiny rotated text)."""
    recording = _cue_recording()[0]
    if kind == "vector":
        recording = MemoryRecording(recording.memory[:, 0], None, recording.rewards, "gru", PHASES, NAMES)
    figures = _drawn_figures(recording, tmp_path, monkeypatch)
    expected = {"shm": {"memory_steps.png", "calibration_steps.png", "vanishing.png", "retention.png"},
                "vector": {"memory_steps.png"}}[kind]
    assert set(figures) == expected
    for name, fig in figures.items():
        caption = fig.get_supxlabel()
        assert caption.startswith("Look for: "), (name, caption)
        texts = _texts(fig)
        words = " ".join(text.get_text() for text in texts)
        for label in NAMES.values():
            assert f"({label})" in words, f"{name}: phase name {label!r} missing"
        small = [(text.get_text(), text.get_fontsize()) for text in texts if text.get_fontsize() < 8]
        assert not small, f"{name}: text below 8 pt: {small}"
        ylabels = {id(ax.yaxis.label) for ax in fig.axes}
        rotated = [text.get_text() for text in texts if text.get_rotation() % 180 and id(text) not in ylabels]
        assert not rotated, f"{name}: rotated text other than y-axis labels: {rotated}"
        plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert all(ax.get_ylabel() for ax in colorbars), f"{name}: a colour bar without a label"
        assert plots[0].get_ylabel() and plots[-1].get_xlabel(), f"{name}: unlabelled axes"
        assert all(ax.get_title() for ax in plots[:1]), f"{name}: the first panel has no title"
    if kind == "shm":
        grid = figures["memory_steps.png"].axes
        assert all(ax.get_xlabel() == "key index j" for ax in grid if ax.get_label() != "<colorbar>")
        assert grid[0].get_ylabel() == "value index i"
        assert grid[0].get_title() == "step t = 0\nphase 0 (cue)\nreward 0"  # not a bare "r = ..."
        assert [ax.get_ylabel() != "" for ax in figures["retention.png"].axes] == [True, True, True]
        assert figures["vanishing.png"].axes[0].get_xlabel().startswith("step t")
