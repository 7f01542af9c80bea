"""Concurrent use and interrupts, with real processes and signals: two first uses of one new store,
a second driver on a running study (fresh and ``--resume``), Ctrl-C (once and twice) and SIGTERM
to ``train`` and ``tune`` at several moments, a stale ``RAY_ADDRESS``, stores that must not be
created or written. Each test checks the exit codes, the final MLflow statuses (none RUNNING) and
the files (docs/safety.md says what each should be)."""

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from conftest import kill_session

#: the smallest real run: CueRecall with a tiny GRU, 256 env steps per iteration
TINY = ["env.id=rllib_shm/CueRecall-D5-v0", "module.memory.kind=gru", "module.memory.mem_size=8",
        "module.max_seq_len=8", "module.encoder_hiddens=[16]", "module.memory_output=16", "module.head_hiddens=[16]",
        "algo.train_batch_size=256", "algo.minibatch_size=128", "algo.num_epochs=1",
        "algo.num_envs_per_env_runner=2", "run.checkpoint_every=1"]
STUDY = {
    "env": {"id": "rllib_shm/CueRecall-D5-v0"},
    "module": {"memory": {"kind": {"choice": ["gru", "mlp"]}, "mem_size": 8}, "max_seq_len": 8,
               "encoder_hiddens": [16], "memory_output": 16, "head_hiddens": [16]},
    "algo": {"train_batch_size": 256, "minibatch_size": 128, "num_epochs": 1, "num_envs_per_env_runner": 2},
    "run": {"stop_iters": 3, "checkpoint_every": 1},
    "tune": {"name": "locked", "num_samples": 2, "max_concurrent": 1, "seed": 0, "sampler": "grid"},
}


class Command:
    """``rllib-shm ARGS`` in a session of its own, its output collected line by line as it comes
    (``prefix``: a command that runs it, e.g. in a mount namespace)."""

    def __init__(self, *args, env=None, prefix=()) -> None:
        self.process = subprocess.Popen([*prefix, sys.executable, "-m", "rllib_shm.cli", *map(str, args)],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True, env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, predicate, timeout_s: float = 300) -> None:
        deadline = time.time() + timeout_s
        while not predicate(self):
            assert self.process.poll() is None, f"ended early ({self.process.returncode}):\n{self.output[-3000:]}"
            assert time.time() < deadline, f"timed out:\n{self.output[-3000:]}"
            time.sleep(0.05)

    def says(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def finish(self, timeout_s: float = 600) -> int:
        try:
            code = self.process.wait(timeout=timeout_s)
        finally:
            kill_session(self.process.pid)  # whatever Ray processes it left
        self._reader.join(timeout=10)
        return code


def statuses(uri: str) -> dict[str, str]:
    """run name -> status of every run in the store (``train`` logs to ``rllib-shm``, a study to its own
    experiment named by ``tune.name``)."""
    client = mlflow.MlflowClient(tracking_uri=uri)
    ids = [experiment.experiment_id for experiment in client.search_experiments()]
    return {run.info.run_name: run.info.status for run in client.search_runs(ids)} if ids else {}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime in ns) of every file under ``root``."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


# --- stores -----------------------------------------------------------------------------------

FIRST_USE = """
import sys, time
from pathlib import Path
from rllib_shm.tracking import check_tracking_uri, experiment_id
import mlflow
print("ready", flush=True)
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
check_tracking_uri(sys.argv[1])
client = mlflow.MlflowClient(tracking_uri=sys.argv[1])
client.set_terminated(client.create_run(experiment_id(client, "rllib-shm")).info.run_id)
print("ok")
"""


@pytest.mark.slow
def test_two_first_uses_of_a_new_store_both_succeed(tmp_path):
    """What ``train`` and ``tune`` do first with a store, by two processes released at the same instant
    onto a store that does not exist yet (MLflow's schema migration raced: 6 of 6 pairs failed)."""
    for attempt in range(3):
        uri, go = f"sqlite:///{tmp_path / str(attempt) / 'mlflow.db'}", tmp_path / f"go{attempt}"
        pair = [subprocess.Popen([sys.executable, "-c", FIRST_USE, uri, str(go)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        assert [process.stdout.readline().strip() for process in pair] == ["ready", "ready"]  # (MLflow imported)
        go.touch()
        outputs = [process.communicate(timeout=120)[0] for process in pair]
        assert [process.returncode for process in pair] == [0, 0], outputs
        assert list(statuses(uri).values()) == ["FINISHED", "FINISHED"]


def test_report_refuses_a_sqlite_file_that_is_not_an_mlflow_store_without_writing_it(tmp_path):
    database = tmp_path / "notes.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
    before = snapshot(tmp_path)
    command = Command("report", "--runs", "0123abcd", "--mlflow-uri", f"sqlite:///{database}", "--out",
                      tmp_path / "report")
    assert command.finish(120) == 2, command.output
    assert "not an MLflow store" in command.output
    assert snapshot(tmp_path) == before  # no table, no journal, no lock file, no report directory


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished ``train`` (1 iteration): its output directory and checkpoint."""
    out = tmp_path_factory.mktemp("trained") / "out"
    command = Command("train", *[f"--set={value}" for value in TINY + ["run.stop_iters=1", f"run.output_dir={out}"]])
    assert command.finish() == 0, command.output
    checkpoint = next(out.glob("*/checkpoints/iter_00001"))
    return out, checkpoint


@pytest.mark.slow
def test_evaluate_never_creates_the_store_of_a_moved_checkpoint(tmp_path, trained):
    out, checkpoint = trained
    moved = tmp_path / "elsewhere" / "iter_00001"
    shutil.copytree(checkpoint, moved)
    gone = tmp_path / "gone"  # the recorded store's directory, as on another machine
    meta_file = moved / "rllib_shm.json"
    meta = json.loads(meta_file.read_text())
    meta["mlflow"]["tracking_uri"] = f"sqlite:///{gone / 'out' / 'mlflow.db'}"
    meta_file.write_text(json.dumps(meta))
    command = Command("evaluate", moved, "--episodes", "1")
    assert command.finish(300) == 0, command.output
    assert "not logging to MLflow" in command.output and str(gone / "out" / "mlflow.db") in command.output
    assert not gone.exists()
    explicit = Command("evaluate", moved, "--episodes", "1", "--mlflow-uri", f"sqlite:///{gone / 'mlflow.db'}")
    assert explicit.finish(300) == 2, explicit.output
    assert "does not exist" in explicit.output and not gone.exists()


READ_ONLY_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'


@contextlib.contextmanager
def read_only(directory: Path):
    """Yields the command prefix under which ``directory`` is read-only: none for a plain user (its
    write bits are cleared meanwhile); for root, whom permission bits do not stop, a mount namespace
    in which it is a read-only bind mount (skipped where that is not allowed)."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [directory, *directory.rglob("*")]}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            yield []
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    prefix = ["unshare", "-m", "sh", "-c", READ_ONLY_MOUNT, str(directory)]
    probe = subprocess.run([*prefix, "touch", str(directory / "probe")], capture_output=True, text=True)
    if shutil.which("unshare") is None or "Read-only file system" not in probe.stderr:
        pytest.skip(f"root without a read-only bind mount: {probe.stderr.strip()[-200:]}")
    yield prefix


@pytest.mark.slow
def test_a_read_only_store_is_refused_before_any_episode_or_training(tmp_path, trained):
    """Refused at once (not after MLflow's ~2 minutes of connection retries), before any episode
    (``evaluate`` ran them all, wrote its JSON, then failed with a traceback) or training."""
    out, checkpoint = trained
    store = tmp_path / "store"
    shutil.copytree(out, store, ignore=shutil.ignore_patterns("*.lock", "run-*"))
    uri = f"sqlite:///{store / 'mlflow.db'}"
    before = snapshot(store)
    run = [f"--set={value}" for value in TINY + [f"run.output_dir={tmp_path / 'run'}"]]
    with read_only(store) as prefix:
        evaluate = Command("evaluate", checkpoint, "--episodes", "1", "--output", tmp_path / "eval.json",
                           "--mlflow-uri", uri, prefix=prefix)
        assert evaluate.finish(300) == 2, evaluate.output
        assert "read-only" in evaluate.output and "evaluating" not in evaluate.output
        train = Command("train", *run, "--mlflow-uri", uri, prefix=prefix)
        assert train.finish(300) == 2, train.output
        assert "read-only" in train.output
        started = time.time()  # a new store in a read-only directory: MLflow retried for 107 s
        new_store = Command("train", *run, "--mlflow-uri", f"sqlite:///{store / 'new.db'}", prefix=prefix)
        assert new_store.finish(300) == 2, new_store.output
        assert "read-only" in new_store.output and time.time() - started < 60
    assert not (tmp_path / "eval.json").exists() and not (tmp_path / "run").exists()
    assert snapshot(store) == before


def test_a_stale_ray_address_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    command = Command("train", *[f"--set={value}" for value in TINY + [f"run.output_dir={out}"]],
                      env={"RAY_ADDRESS": "127.0.0.1:9"})
    assert command.finish(120) == 2, command.output
    assert "RAY_ADDRESS='127.0.0.1:9'" in command.output
    assert not out.exists()


HOLD = """
import sys, time
from pathlib import Path
from rllib_shm.locking import DriverLock
DriverLock(Path(sys.argv[1]), "s").acquire("study 's'")
print("held", flush=True)
time.sleep(600)
"""


def test_a_driver_lock_names_its_holder_and_is_taken_over_once_the_holder_is_gone(tmp_path):
    from rllib_shm.locking import DriverLock, LockHeld

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=f"pid {holder.pid} on .*, since "):
            DriverLock(tmp_path, "s").acquire("study 's'")
    finally:
        holder.kill()  # SIGKILL: no release, the file stays
        holder.wait(timeout=30)
    assert (tmp_path / "s.driver.lock").exists()
    said = []
    with DriverLock(tmp_path, "s") as lock:
        lock.acquire("study 's'", log=said.append)
        assert json.loads((tmp_path / "s.driver.lock").read_text())["pid"] == os.getpid()
    assert len(said) == 1 and f"pid {holder.pid}" in said[0] and "taking it over" in said[0]
    assert not (tmp_path / "s.driver.lock").exists()


LATE_RECORD = """
import fcntl, json, os, socket, sys, time
descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(1.0)  # as a driver descheduled between taking the lock and writing its record
os.write(descriptor, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"}).encode())
time.sleep(600)
"""


def test_a_driver_refused_before_the_holder_wrote_its_record_still_names_it(tmp_path):
    """Two drivers started at once: the loser can find the lock taken and its file still empty; it
    waits for the holder's record rather than saying "a process that did not record itself"."""
    from rllib_shm.locking import DriverLock, LockHeld

    holder = subprocess.Popen([sys.executable, "-c", LATE_RECORD, str(tmp_path / "s.driver.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeld, match=f"pid {holder.pid} on "):
            DriverLock(tmp_path, "s").acquire("study 's'")
    finally:
        holder.kill()
        holder.wait(timeout=30)


# --- train: Ctrl-C and SIGTERM ------------------------------------------------------------------

def started_run(command: Command) -> bool:
    return command.says("MLflow run ")


def iterating(command: Command) -> bool:
    return command.says("[iter    2/")


@pytest.mark.slow
@pytest.mark.parametrize(("moment", "signals", "code"), [
    (started_run, (signal.SIGINT, signal.SIGINT), 130),  # while the algorithm is being built
    (iterating, (signal.SIGINT, signal.SIGINT), 130),  # between iterations and checkpoints
    (iterating, (signal.SIGTERM,), 143),
], ids=["ctrl-c-twice-while-building", "ctrl-c-twice-while-training", "sigterm-while-training"])
def test_an_interrupted_train_ends_its_run_killed(tmp_path, moment, signals, code):
    out = tmp_path / "out"
    command = Command("train", *[f"--set={value}" for value in TINY + ["run.stop_iters=200", f"run.output_dir={out}"]])
    command.wait_for(moment)
    for number, sig in enumerate(signals):
        if number:
            time.sleep(0.3)  # the second press, well within the ~4 s of cleanup
        command.process.send_signal(sig)
    assert command.finish(120) == code, command.output
    assert "Fatal Python error" not in command.output and "Traceback" not in command.output
    assert "SIGTERM received" not in command.output  # (Ray's native handler: a stack dump, then abort)
    assert list(statuses(f"sqlite:///{out / 'mlflow.db'}").values()) == ["KILLED"]


# --- tune: one study, one driver ----------------------------------------------------------------

def study_file(tmp_path: Path, stop_iters: int = 3, **tune) -> Path:
    data = json.loads(json.dumps(STUDY))
    data["tune"].update(tune)
    data["run"]["stop_iters"] = stop_iters
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def trial_running(storage: Path, name: str):
    """A trial of study ``name`` has reported an iteration."""
    return lambda _command: any(len(p.read_text().splitlines()) >= 2
                                for p in (storage / name).glob("trial_*/progress.csv"))


@pytest.mark.slow
def test_one_study_one_driver_and_interrupt(tmp_path):
    """Two fresh drivers at once: one runs, the other is refused naming it (and touches none of its
    runs); a ``--resume`` while it runs is refused too. Ctrl-C: exit 130, nothing RUNNING, the
    lock released. ``--resume`` then continues the interrupted trials to their end (every run
    FINISHED), and a ``--resume`` of the finished study says so, exits 0 and writes nothing."""
    storage = tmp_path / "tune"
    # long enough trials that both still run when Ctrl-C comes, after the refused --resume: Ctrl-C came at
    # iteration 14-23 of 60 on a machine at about half speed (2 cores shared with another study), since a
    # driver is refused as soon as it has loaded the study file, before it reads the study's state
    study = study_file(tmp_path, stop_iters=60, max_concurrent=2)
    uri = f"sqlite:///{storage / 'mlflow.db'}"
    first, second = (Command("tune", study, "--storage", storage) for _ in range(2))
    deadline = time.time() + 120
    while first.process.poll() is None and second.process.poll() is None:
        assert time.time() < deadline, first.output + second.output
        time.sleep(0.1)
    loser, winner = (first, second) if first.process.poll() is not None else (second, first)
    assert loser.finish(60) == 2, loser.output
    assert f"pid {winner.process.pid} on " in loser.output and "another driver" in loser.output
    winner.wait_for(trial_running(storage, "locked"))
    resumed = Command("tune", study, "--storage", storage, "--resume")
    assert resumed.finish(120) == 2, resumed.output
    assert f"pid {winner.process.pid} on " in resumed.output
    assert "FAILED" not in statuses(uri).values()  # the refused drivers closed nothing of the winner's

    # one Ctrl-C here (double presses are tested on train, SIGTERM on tune below)
    winner.process.send_signal(signal.SIGINT)
    assert winner.finish(300) == 130, winner.output
    ended = statuses(uri)
    assert ended and "RUNNING" not in ended.values() and ended["locked"] == "KILLED", ended
    assert not (storage / "locked.driver.lock").exists()

    # the refused drivers left the study as the winner saved it: a --resume continues the interrupted
    # trials to their end, and every run ends FINISHED
    again = Command("tune", study, "--storage", storage, "--resume")
    assert again.finish(600) == 0, again.output
    assert "resuming study locked" in again.output and "interrupted with" not in again.output
    ended = statuses(uri)
    assert set(ended.values()) == {"FINISHED"} and len(ended) == 3, ended
    assert not (storage / "locked.driver.lock").exists()

    # every trial's saved state says it ended (Tune's saved `done` may not: studies/runner.saved_ended),
    # so a --resume of the finished study neither restores it nor calls it interrupted
    before = snapshot(storage)
    finished = Command("tune", study, "--storage", storage, "--resume")
    assert finished.finish(300) == 0, finished.output
    assert "has finished already (2 of 2 trials ended)" in finished.output, finished.output
    assert snapshot(storage) == before and statuses(uri) == ended


@pytest.mark.slow
def test_sigterm_to_a_tune_driver_ends_its_runs_killed_and_resumable(tmp_path):
    storage = tmp_path / "tune"
    study = study_file(tmp_path, name="terminated", num_samples=1)
    driver = Command("tune", study, "--storage", storage, "--set", "run.stop_iters=50")
    driver.wait_for(trial_running(storage, "terminated"))
    driver.process.send_signal(signal.SIGTERM)
    assert driver.finish(300) == 143, driver.output
    assert "--resume" in driver.output and "Fatal Python error" not in driver.output
    assert "SIGTERM received" not in driver.output
    ended = statuses(f"sqlite:///{storage / 'mlflow.db'}")
    assert set(ended.values()) == {"KILLED"} and len(ended) == 2, ended
    assert not (storage / "terminated.driver.lock").exists()
