"""Files written whole or not at all, and output directories claimed by one writer at a time.

Every result file is first written under a hidden temporary name in its own directory (the same
file system), flushed to disk, and then moved into place in one step, so a reader, a crash or a
Ctrl-C sees the old state or the new one, never half a file:

- ``write_text`` / ``write_json``: a whole file from a string or a JSON payload;
- ``temporary_path``: a temporary name for writers that take a path (matplotlib's ``savefig``,
  ``torch.onnx.export``), published when the block ends cleanly and removed otherwise;
- ``scratch_directory`` + ``publish``: build several files in a hidden directory, then move them into
  place together; an interrupt (SIGINT, SIGTERM) that arrives during the moves is held until they end;
- ``scratch_directory`` + ``publish_directory``: a whole directory (a checkpoint) renamed into place.

Results are never overwritten unless asked (``replace=True``, e.g. ``report --force``): a file is
put in place with ``os.link``, which fails if the name is taken, so of two writers of one file one
wins whole and the other gets a ``ValueError`` naming it. With ``replace=True`` the old file is
swapped for the new one by ``os.replace``, never removed first.

``claim_directory`` takes an exclusive ``flock`` on an output directory for as long as its writer
works in it: a second writer is refused at once, naming the directory. The lock belongs to the open
file, so it goes with the process however the process ends (a killed writer never blocks the next)
and no lock file is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

HIDDEN = ".rllib-shm-"  # prefix of every temporary name (never a result's name)
_claimed: dict[tuple[int, int], int] = {}  # (st_dev, st_ino) of a directory this process holds -> depth


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _taken(path: Path, flag: str) -> ValueError:
    shown = f"{flag} {str(path)!r}" if flag else repr(str(path))
    return ValueError(f"{shown} exists (another process wrote it meanwhile?); results are never overwritten")


def _place(source: Path, target: Path, replace: bool, flag: str) -> None:
    """Move the finished ``source`` to ``target``: ``os.replace``, or ``os.link`` (no overwrite)."""
    if replace:
        os.replace(source, target)
        return
    try:
        os.link(source, target)
    except FileExistsError:
        raise _taken(target, flag) from None
    os.unlink(source)


@contextlib.contextmanager
def temporary_path(path: str | Path, *, replace: bool = False, flag: str = "") -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; on a clean exit the file is synced and moved to
    ``path`` (refused with ValueError if ``path`` exists, unless ``replace``), else removed."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f"{HIDDEN}{path.name}.", dir=path.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        _place(temporary, path, replace, flag)
        _fsync_directory(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_text(path: str | Path, text: str, *, replace: bool = False, flag: str = "") -> Path:
    """Write ``text`` (UTF-8) to ``path`` whole: never half a file, never over an existing one unless
    ``replace``."""
    with temporary_path(path, replace=replace, flag=flag) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, payload: Any, *, replace: bool = False, flag: str = "", **dumps: Any) -> Path:
    """``json.dumps(payload, **dumps)`` (indent 2 by default) written whole to ``path``."""
    return write_text(path, json.dumps(payload, **{"indent": 2, **dumps}), replace=replace, flag=flag)


@contextlib.contextmanager
def scratch_directory(parent: str | Path, name: str = "") -> Iterator[Path]:
    """A hidden temporary directory in ``parent`` (created if missing), removed with whatever is still
    in it when the block ends, however it ends."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{HIDDEN}{name}.", dir=parent))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block are delivered when it ends (main thread only;
    elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: arrived.append(number))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in dict.fromkeys(arrived):
            signal.raise_signal(sig)


def publish(files: Mapping[Path, Path], *, replace: bool = False, flag: str = "") -> None:
    """Move finished files (source → target) into place together, interrupts held. Without
    ``replace``, if a target is taken meanwhile, the targets already placed are taken back (nothing
    of this writer stays) and ValueError names the taken one."""
    placed: list[Path] = []
    with held_signals():
        try:
            for source, target in files.items():
                _place(Path(source), Path(target), replace, flag)
                placed.append(Path(target))
        except ValueError:
            for target in placed:
                with contextlib.suppress(OSError):
                    target.unlink()
            raise
    for directory in {Path(target).parent for target in files.values()}:
        _fsync_directory(directory)


def publish_directory(source: Path, target: Path) -> None:
    """Rename the finished directory ``source`` to ``target`` (same file system); ValueError if
    ``target`` exists."""
    if target.exists():
        raise _taken(target, "")
    with held_signals():
        try:
            os.rename(source, target)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise _taken(target, "") from None
            raise
    _fsync_directory(target.parent)


@contextlib.contextmanager
def claim_directory(directory: str | Path, flag: str) -> Iterator[Path]:
    """Hold an exclusive lock on the output ``directory`` (created if missing) while the block runs;
    ValueError at once if another process holds it. The directories this call created are removed
    again if the block fails and leaves them empty. Claims by the same process nest."""
    directory = Path(directory)
    created: list[Path] = []  # the directories this call creates, deepest first
    missing = directory
    while not missing.exists() and missing != missing.parent:
        created.append(missing)
        missing = missing.parent
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        created = []  # another writer made it first
    fd = os.open(directory, os.O_RDONLY)
    key = (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
    ok = False
    try:
        if key not in _claimed:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"{flag} {str(directory)!r} is being written by another process; wait for it to "
                                 "finish or choose another directory") from None
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(directory))
            except FileNotFoundError:
                same = False
            if not same:  # removed (by a writer that failed) between our open and our lock
                raise ValueError(f"{flag} {str(directory)!r} was removed by another process meanwhile; run again")
        _claimed[key] = _claimed.get(key, 0) + 1
        try:
            yield directory
            ok = True
        finally:
            _claimed[key] -= 1
            if not _claimed[key]:
                del _claimed[key]
            if not ok:
                with contextlib.suppress(OSError):
                    for made in created:
                        made.rmdir()  # only while empty
    finally:
        os.close(fd)  # releases the lock
