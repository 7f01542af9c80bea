"""Memory drawings: files, deterministic sizes, GIF frames, the vanishing measure, input checks.

T time, H memory size. Recordings are synthetic: a pattern written at t = 2 and kept (C ≈ 1, one row < 1).
"""

import json
import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image

from rllib_shm.runs import drawing as visualize
from rllib_shm.runs.drawing import MemoryRecording, default_steps, draw_memory, vanishing_fraction

T, H, DPI = 30, 8, 50


def _width(panels: int, dpi: int = DPI) -> int:
    return round(dpi * (2.0 * panels + 1.0))  # the documented formula


def _height(dpi: int = DPI) -> int:
    return round(dpi * 2.6)


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
    assert mpimg.imread(paths["vanishing.png"]).shape[:2] == (round(DPI * 3.0), round(DPI * 5.0))
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
