"""``rllib_shm.files``: files written whole or not at all, one writer per output directory.

The real-process versions (Ctrl-C during a save or a drawing, two writers of one export, drawing
or report) are in ``test_writes_interrupts.py``; these check the pieces in-process, plus a lock held
by a second process that is then killed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rllib_shm.files import (
    HIDDEN,
    claim_directory,
    held_signals,
    publish,
    scratch_directory,
    temporary_path,
    write_json,
    write_text,
)

ROOT = Path(__file__).resolve().parents[1]


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_file_is_never_written_over_unless_asked(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})
    with pytest.raises(ValueError, match=r"--output '.*out.json' exists .*never overwritten"):
        write_json(path, {"a": 2}, flag="--output")
    assert json.loads(path.read_text()) == {"a": 1}
    write_text(path, "replaced", replace=True)
    assert path.read_text() == "replaced" and names(tmp_path) == ["out.json"]


def test_a_failed_writer_leaves_nothing(tmp_path):
    path = tmp_path / "figure.png"
    with pytest.raises(KeyboardInterrupt), temporary_path(path) as temporary:
        temporary.write_bytes(b"half a figure")
        raise KeyboardInterrupt
    assert names(tmp_path) == []


def test_publish_takes_back_what_it_placed_when_a_target_is_taken(tmp_path):
    (tmp_path / "b.txt").write_text("the other writer's")
    with scratch_directory(tmp_path, "x") as scratch:
        for name in ("a.txt", "b.txt"):
            (scratch / name).write_text("mine")
        with pytest.raises(ValueError, match="b.txt' exists"):
            publish({scratch / "a.txt": tmp_path / "a.txt", scratch / "b.txt": tmp_path / "b.txt"})
    assert names(tmp_path) == ["b.txt"] and (tmp_path / "b.txt").read_text() == "the other writer's"


def test_an_interrupt_during_publishing_arrives_after_every_file_is_in_place(tmp_path):
    with scratch_directory(tmp_path, "x") as scratch:
        sources = {scratch / f"{i}.txt": tmp_path / f"{i}.txt" for i in range(3)}
        for source in sources:
            source.write_text("x")
        with pytest.raises(KeyboardInterrupt), held_signals():
            os.kill(os.getpid(), signal.SIGINT)
            publish(sources)
    assert names(tmp_path) == ["0.txt", "1.txt", "2.txt"]


def test_an_interrupted_checkpoint_save_leaves_no_checkpoint(tmp_path):
    """``write_checkpoint`` with an algorithm whose save is interrupted after its first two files."""
    from rllib_shm.config import load_config
    from rllib_shm.runs.checkpoints import write_checkpoint

    class Interrupted:
        def get_module(self):
            return self

        def save_to_path(self, path):
            Path(path, "rllib_checkpoint.json").write_text("{}")
            Path(path, "class_and_ctor_args.pkl").write_bytes(b"")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_checkpoint(Interrupted(), tmp_path / "checkpoints" / "iter_00001", load_config(None, []), 1, 10)
    assert names(tmp_path / "checkpoints") == []


def test_one_writer_per_directory_and_a_dead_writer_never_blocks(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from rllib_shm.files import claim_directory\n"
                               "with claim_directory(sys.argv[1], '--out'):\n    print('held', flush=True)\n"
                               "    time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"--out '{out}' is being written by another process"):
            with claim_directory(out, "--out"):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            with claim_directory(out, "--out"), claim_directory(out, "--out"):  # nested in one process
                break
        except ValueError:
            assert time.monotonic() < deadline, "the lock outlived its process"
            time.sleep(0.1)


def test_a_claimed_directory_that_this_writer_created_goes_if_it_fails(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError), claim_directory(out, "--out"), scratch_directory(out, "drawing"):
        raise RuntimeError("drawing failed")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(RuntimeError), claim_directory(kept, "--out"):
        raise RuntimeError
    assert kept.is_dir() and not [p for p in kept.iterdir() if p.name.startswith(HIDDEN)]
