"""File locks: one driver per study, and one process at a time creating a new SQLite store.

Both are ``fcntl.flock`` locks on a small file: the kernel releases them when their process ends,
however it ends (SIGKILL, a crash, a power-off of the machine holding a local file), so a lock is
never left held by a process that is gone. The driver lock's file also names its holder (pid,
host, start time) so that a refused second driver can say who runs the study; a file whose holder
is gone is stale, and the next driver takes it over (and says so).

``flock`` works on local file systems and on NFS v4; on storage that does not honour it (some FUSE
mounts) a study is not protected against a second driver.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

DRIVER_LOCK = ".driver.lock"  # <storage>/<study>.driver.lock, beside the study's directory


class LockHeld(ValueError):
    """A lock another live process holds (a ``ValueError``: the command line exits 2 with its message)."""


def _open_locked(path: Path, blocking: bool) -> int | None:
    """A descriptor of ``path`` (created if needed) holding its exclusive lock, or None when another
    process holds it and ``blocking`` is False. The file may be removed by its last holder between
    our ``open`` and ``flock``: then the lock is on a name nobody else will open, so try again."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(descriptor)
            return None
        except BaseException:
            os.close(descriptor)
            raise
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)


@contextlib.contextmanager
def store_creation_lock(database: Path, timeout_s: float = 300.0) -> Iterator[None]:
    """Serialise the first use of a new SQLite store: MLflow creates its tables by a schema migration
    that two processes cannot run at once ("duplicate column name", "_alembic_tmp_… already exists").
    The lock file ``<database>.lock`` lies beside the database and stays there (removing it would
    race with a process about to lock it)."""
    lock = database.with_name(database.name + ".lock")
    deadline = time.monotonic() + timeout_s
    while True:
        descriptor = _open_locked(lock, blocking=False)
        if descriptor is not None:
            break
        if time.monotonic() > deadline:
            raise LockHeld(f"MLflow store {str(database)!r}: another process has been creating it for over "
                           f"{timeout_s:.0f} s (lock {str(lock)!r})")
        time.sleep(0.1)
    try:
        yield
    finally:
        os.close(descriptor)  # (closing releases the flock)


def describe_holder(text: str) -> str:
    """The holder recorded in a driver lock file, in words."""
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "a process that did not record itself"


class DriverLock:
    """The lock of one study's driver: ``<storage>/<name>.driver.lock``, beside the study's directory
    (which a fresh study creates, so the lock must exist before it), held while the driver runs.

    ``acquire`` raises ``LockHeld`` naming the running driver; ``release`` removes the file. A file
    left by a driver that was killed is stale (its flock went with its process) and is taken over."""

    def __init__(self, storage: Path, name: str) -> None:
        self.path = Path(storage) / f"{name}{DRIVER_LOCK}"
        self._descriptor: int | None = None
        self._created: list[Path] = []  # directories acquire() made, innermost first

    def acquire(self, what: str, log: Callable[[str], None] = print) -> None:
        missing = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = _open_locked(self.path, blocking=False)
        if descriptor is None:
            holder = self._holder()
            raise LockHeld(f"{what} is being run by another driver ({holder}); one study has one driver: wait for "
                           f"it to end, or stop it (Ctrl-C) and pass --resume (lock file {str(self.path)!r})")
        previous = os.read(descriptor, 4096).decode(errors="replace")
        if previous.strip():
            log(f"{what}: a previous driver ({describe_holder(previous)}) ended without releasing its lock; "
                "taking it over")
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        os.fsync(descriptor)
        self._descriptor, self._created = descriptor, missing

    def _holder(self, wait_s: float = 5.0) -> str:
        """The running driver, in words. It writes its record just after it takes the lock, so a driver
        refused in between (two started at once) reads an empty file: it waits a little for the record."""
        deadline = time.monotonic() + wait_s
        text = self._read()
        while not text.strip() and time.monotonic() < deadline:
            time.sleep(0.05)
            text = self._read()
        return describe_holder(text)

    def _read(self) -> str:
        try:
            return self.path.read_text()
        except OSError:
            return ""

    def release(self) -> None:
        if self._descriptor is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still holding it: a process that opened the old file retries (_open_locked)
        os.close(self._descriptor)
        self._descriptor = None
        for directory in self._created:  # a driver refused before it wrote anything leaves no storage directory
            with contextlib.suppress(OSError):
                directory.rmdir()  # (only when empty)

    def __enter__(self) -> DriverLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
