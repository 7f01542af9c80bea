"""Output paths checked before any work: results are never overwritten, and a directory that
cannot take them is refused up front rather than after an hour of episodes.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     check_new_file(pathlib.Path(d) / "missing" / "eval.json", "--output")
    Traceback (most recent call last):
    ...
    ValueError: --output '.../missing/eval.json': directory '.../missing' does not exist
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def _writable_dir(directory: Path, flag: str, shown: Path) -> None:
    """Probed by creating (and at once removing) an empty directory: permission bits say little
    to root, and pseudo file systems such as /proc refuse what access() allows."""
    if not directory.is_dir():
        raise ValueError(f"{flag} {str(shown)!r}: directory {str(directory)!r} does not exist")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".rllib-shm-probe-", dir=directory))
    except OSError as error:
        raise ValueError(f"{flag} {str(shown)!r}: directory {str(directory)!r} is not writable "
                         f"({error.strerror})") from None


def check_new_file(path: Path | None, flag: str) -> None:
    """``path`` must not exist, and its directory must exist and be writable."""
    if path is None:
        return
    path = Path(path)
    if path.exists():
        raise ValueError(f"{flag} {str(path)!r} exists; results are never overwritten")
    _writable_dir(path.parent, flag, path)


def check_new_files_in(directory: Path | None, names: Iterable[str], flag: str) -> None:
    """``directory`` may exist (as a writable directory) but must hold none of ``names``; where it
    does not exist yet, its nearest existing ancestor must be a writable directory (it will be
    created). With no ``names``: a place a run can write to."""
    if directory is None:
        return
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise ValueError(f"{flag} {str(directory)!r} is a file, expected a directory")
        taken = [name for name in names if (directory / name).exists()]
        if taken:
            raise ValueError(f"{flag} {str(directory)!r} already holds {taken}; results are never overwritten "
                             "(choose another directory)")
        _writable_dir(directory, flag, directory)
        return
    ancestor = directory.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{flag} {str(directory)!r}: {str(ancestor)!r} is a file, expected a directory")
    _writable_dir(ancestor, flag, directory)

