"""Whole files or none, under Ctrl-C and two writers of one output, with real processes and signals.

``tests/pause_at.py`` runs ``rllib-shm`` with a pause inside one function (a checkpoint save, a
drawing, an export's check, a report's figures), so a SIGINT or a second writer arrives at exactly
that moment. Each test asserts the exit codes, the MLflow status where a run exists (never RUNNING),
and the files: complete, or absent.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from test_bad_inputs import SMALL, TASK, save_checkpoint

from conftest import kill_session
from rllib_shm.drawing import FILES as DRAWN
from rllib_shm.files import HIDDEN

TESTS = Path(__file__).parent
ROOT = TESTS.parent


def start(args: list[str], pause: tuple[str, str, Path] | None = None) -> subprocess.Popen:
    """``rllib-shm ARGS`` in a new session; with ``pause`` = (MODULE:QUALNAME, SUFFIX, MARKER) it waits
    inside that function until ``MARKER.go`` exists (``pause_at.py``)."""
    prefix = [str(TESTS / "pause_at.py"), pause[0], pause[1], str(pause[2]), "300", "--"] if pause else \
        ["-m", "rllib_shm.cli"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *prefix, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)


def wait_for(marker: Path, process: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the process ended before the pause: {process.communicate()[1][-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no pause within {timeout_s} s")
        time.sleep(0.05)


def finish(process: subprocess.Popen, timeout_s: float = 300) -> tuple[int, str]:
    """(exit code, the error lines of stderr); the process's session is ended either way."""
    try:
        _, err = process.communicate(timeout=timeout_s)
    finally:
        kill_session(process.pid)
    return process.returncode, err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if ": error: " in line]
    return lines[-1] if lines else err[-2000:]


def leftovers(directory: Path) -> list[str]:
    """Hidden scratch names (``rllib_shm.files.HIDDEN``) under ``directory``."""
    return [str(p) for p in directory.rglob(f"{HIDDEN}*")] if directory.exists() else []


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "ckpt")


@pytest.mark.slow
def test_ctrl_c_during_a_checkpoint_save_leaves_no_partial_checkpoint(tmp_path):
    """Before: a 2-file ``iter_00001`` (metadata, class) was left as the newest checkpoint."""
    out, marker, uri = tmp_path / "runs", tmp_path / "saving", f"sqlite:///{tmp_path / 'mlflow.db'}"
    process = start(["train", "--smoke-test", "--set", f"env.id={TASK}", *(f"--set={s}" for s in SMALL),
                     "--set", f"run.output_dir={out}", "--mlflow-uri", uri],
                    pause=("ray.rllib.algorithms.algorithm:Algorithm.get_state", "-", marker))
    wait_for(marker, process)
    in_progress = list(out.glob("*/checkpoints/*"))
    assert len(in_progress) == 1, in_progress  # the pause is inside the first save
    process.send_signal(signal.SIGINT)
    code, err = finish(process)
    assert code == 130, err[-3000:]
    assert list(out.glob("*/checkpoints/*")) == [], "an interrupted save left a checkpoint or its scratch"
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("rllib-shm").experiment_id])
    assert [run.info.status for run in runs] == ["KILLED"]


@pytest.mark.slow
def test_ctrl_c_while_drawing_leaves_no_drawing_and_a_rerun_draws_them_all(checkpoint, tmp_path):
    """Before: a truncated GIF and no summary.json were left, and a rerun into the directory was refused."""
    drawn, marker = tmp_path / "drawn", tmp_path / "drawing"
    args = ["evaluate", str(checkpoint), "--episodes", "1", "--no-mlflow", "--record-memory", str(drawn)]
    process = start(args, pause=("matplotlib.figure:Figure.savefig", "vanishing.png", marker))
    wait_for(marker, process)  # memory_steps.png, the GIF and calibration_steps.png are drawn by now
    process.send_signal(signal.SIGINT)
    code, err = finish(process)
    assert code == 130, err[-3000:]
    assert not drawn.exists() or not [p.name for p in drawn.iterdir()], list(drawn.iterdir())

    code, err = finish(start(args))
    assert code == 0, err[-3000:]
    summary = json.loads((drawn / "summary.json").read_text())
    assert sorted(p.name for p in drawn.iterdir()) == sorted(summary["files"])
    assert set(summary["files"]) <= set(DRAWN) and {"memory.gif", "memory_steps.png"} <= set(summary["files"])


@pytest.mark.slow
def test_two_evaluations_drawing_into_one_directory_one_wins_whole(checkpoint, tmp_path):
    """Before: the second wrote its drawings among the first's, which then failed half-way."""
    drawn, marker = tmp_path / "drawn", tmp_path / "drawing"
    args = ["evaluate", str(checkpoint), "--episodes", "1", "--no-mlflow", "--record-memory", str(drawn)]
    first = start([*args, "--seed", "1"], pause=("matplotlib.figure:Figure.savefig", "memory_steps.png", marker))
    wait_for(marker, first)
    code, err = finish(start([*args, "--seed", "2"]))
    assert code == 2, err[-3000:]
    assert f"--record-memory {str(drawn)!r} is being written by another process" in error_line(err)
    Path(f"{marker}.go").touch()
    code, err = finish(first)
    assert code == 0, err[-3000:]
    summary = json.loads((drawn / "summary.json").read_text())
    assert sorted(p.name for p in drawn.iterdir()) == sorted(summary["files"])


@pytest.mark.slow
def test_two_exports_to_one_file_one_wins_whole(checkpoint, tmp_path):
    """Before: both exited 0 and the later one silently replaced the earlier."""
    from rllib_shm.export.runtime import OnnxPolicy

    output, marker = tmp_path / "policy.onnx", tmp_path / "checking"
    first = start(["export", str(checkpoint), "--output", str(output), "--theta", "sample"],
                  pause=("rllib_shm.export.onnx_export:_check_with_onnxruntime", "-", marker))
    wait_for(marker, first)  # the first export is written (to its scratch) and about to be checked
    code, err = finish(start(["export", str(checkpoint), "--output", str(output)]))
    assert code == 0, err[-3000:]
    Path(f"{marker}.go").touch()
    code, err = finish(first)
    assert code == 2, err[-3000:]
    assert f"--output {str(output.with_suffix('.json'))!r} exists" in error_line(err)
    policy = OnnxPolicy(output)  # the second export's model and sidecar, whole and matching
    assert policy.meta["theta"]["mode"] == "expected" and not policy.theta_inputs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checking", "checking.go", "policy.json", "policy.onnx"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """An MLflow store with two finished training runs of CueRecall."""
    from rllib_shm.config import load_config
    from rllib_shm.tracking import curated_params, experiment_id, log_metrics, log_params, run_tags

    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    config = load_config(None, [f"env.id={TASK}"])
    for seed in (0, 1):
        run = client.create_run(experiment_id(client, "rllib-shm"), run_name=f"r{seed}", tags=run_tags(config))
        log_params(client, run.info.run_id, curated_params(config))
        for iteration in (1, 2):
            log_metrics(client, run.info.run_id, {"episode_return_mean": 0.1 * iteration + seed,
                                                  "episode_return_max_mean": 0.1 * iteration + seed,
                                                  "env_steps": 1000 * iteration}, step=iteration)
        client.set_terminated(run.info.run_id)
    return uri


@pytest.mark.slow
def test_two_reports_into_one_directory_one_wins_whole(store, tmp_path):
    """Before: both exited 0 and the later one silently replaced the earlier's files."""
    out, marker = tmp_path / "report", tmp_path / "drawing"
    args = ["report", "--experiment", "rllib-shm", "--mlflow-uri", store, "--out", str(out), "--no-mlflow-log"]
    first = start(args, pause=("rllib_shm.reports.report:write_figures", "-", marker))
    wait_for(marker, first)
    code, err = finish(start(args))
    assert code == 2, err[-3000:]
    assert f"--out {str(out)!r} is being written by another process" in error_line(err)
    Path(f"{marker}.go").touch()
    code, err = finish(first)
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["curves_CueRecall-D5-v0.png", "report.md", "table.csv"]
    assert "CueRecall" in (out / "report.md").read_text()
    code, err = finish(start([*args, "--force"]))  # --force replaces them, each file in one step
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["curves_CueRecall-D5-v0.png", "report.md", "table.csv"]


def test_the_program_ignores_signals_once_a_successful_command_has_its_exit_code(tmp_path):
    """A Ctrl-C that lands after `rllib-shm` succeeded, while Python shuts down, must not turn exit 0
    into death by SIGINT; a call of ``main`` from Python leaves the caller's handlers alone."""
    probe = ("import signal, sys; from rllib_shm.cli.main import main; "
             "sys.argv = ['rllib-shm', 'envs']; code = main(); program = signal.getsignal(signal.SIGINT); "
             "signal.signal(signal.SIGINT, signal.default_int_handler); main(['envs']); "
             "print(code, program == signal.SIG_IGN, signal.getsignal(signal.SIGINT) == signal.default_int_handler)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 True True"
