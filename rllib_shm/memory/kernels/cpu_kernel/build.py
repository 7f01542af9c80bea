"""Compile ``shm_scan.cpp`` once per machine, at first use, into a cache; load it with ctypes.

The kernel is plain C++ (no torch headers), so a compile takes seconds with the system's C++
compiler and nothing is built at install time (``pip install`` never needs torch in a build env).

- Compiler: ``$CXX`` if set, else the first of ``c++``, ``g++``, ``clang++`` on ``PATH``.
- Flags: ``-O3 -march=native -fopenmp-simd`` (vectorised inner loops for this CPU; on x86-64 also
  ``-mprefer-vector-width=512``, which uses AVX-512 where the CPU has it), ``-shared -fPIC``.
- Cache: ``$RLLIB_SHM_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/rllib_shm`` (default
  ``~/.cache/rllib_shm``). The library's name carries a hash of the source, the flags, the
  compiler and the CPU's feature flags, so an edit, another compiler or another CPU builds anew.
- Concurrency: several processes (Ray workers) may import at once. The build holds an exclusive
  ``flock`` on ``<name>.lock`` and writes to a temporary file that is renamed into place, so a
  reader never sees a half-written library and only one process compiles.

Any failure (no compiler, compile error, unwritable cache, load error) is returned as a message;
the caller falls back to the pure-torch scan with a one-time warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).with_name("shm_scan.cpp")
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-std=c++17", "-shared", "-fPIC", "-pthread") + (
    ("-mprefer-vector-width=512",) if platform.machine() in ("x86_64", "AMD64") else ()  # AVX-512 where present
)
ABI_VERSION = 2


@dataclass(frozen=True)
class Build:
    """Outcome of :func:`build`: the loaded library, or why there is none."""

    library: ctypes.CDLL | None
    path: Path | None  # the shared library (cached or just built)
    compile_s: float  # seconds spent compiling in this process (0.0: found in the cache)
    error: str | None  # why the compiled kernel is unavailable


def cache_dir() -> Path:
    """Where compiled kernels are kept (see the module docstring)."""
    explicit = os.environ.get("RLLIB_SHM_KERNEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rllib_shm"


def _compiler() -> str | None:
    explicit = os.environ.get("CXX")
    if explicit:
        return shutil.which(explicit) or explicit
    for name in ("c++", "g++", "clang++"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def library_name(compiler: str) -> str:
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), compiler.encode(), _cpu_flags().encode(),
                 platform.machine().encode()):
        digest.update(part)
        digest.update(b"\0")
    return f"shm_scan-{digest.hexdigest()[:16]}.so"


def _compile(compiler: str, target: Path) -> None:
    """Compile into a temporary file beside ``target``, then rename it into place (atomic)."""
    handle, temporary = tempfile.mkstemp(prefix=target.stem + ".", suffix=".tmp.so", dir=target.parent)
    os.close(handle)
    try:
        done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", temporary],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def timed_compile(directory: Path) -> float:
    """Seconds for one fresh compile of the kernel into ``directory`` (the first-use cost; for benchmarks)."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found ($CXX, c++, g++ or clang++)")
    start = time.perf_counter()
    _compile(compiler, Path(directory) / library_name(compiler))
    return time.perf_counter() - start


def _load(path: Path) -> ctypes.CDLL:
    library = ctypes.CDLL(str(path))
    version = library.shm_kernel_abi_version()
    if version != ABI_VERSION:
        raise RuntimeError(f"{path} has kernel ABI {version}, expected {ABI_VERSION}")
    return library


def build() -> Build:
    """Load the cached kernel, compiling it first if needed (never raises)."""
    compiler = _compiler()
    if compiler is None:
        return Build(None, None, 0.0, "no C++ compiler found ($CXX, c++, g++ or clang++)")
    path = None
    try:
        import fcntl  # POSIX only: elsewhere the ImportError below means "use the fallback"

        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / library_name(compiler)
        compile_s = 0.0
        if not path.exists():
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                if not path.exists():  # another process may have built it while we waited
                    start = time.perf_counter()
                    _compile(compiler, path)
                    compile_s = time.perf_counter() - start
        return Build(_load(path), path, compile_s, None)
    except Exception as error:  # noqa: BLE001 — any failure means "use the fallback"
        return Build(None, path, 0.0, f"{type(error).__name__}: {error}")
