"""Test-session defaults and shared fixtures.

One intra-op thread per process (2-core CI machines), set before any test module imports torch.
``mlflow_server``: a real MLflow tracking server on 127.0.0.1 (SQLite backend), one per module;
``running_mlflow_server``: the same over a given backend store; ``kill_session``: end every process
of a session (a driver, or a ``ray start``, started with ``start_new_session=True``).

The suite runs on two pytest-xdist workers (``-n 2 --dist loadfile`` in pyproject.toml), so nothing
here may touch another worker's processes: no ``ray stop`` (it ends every Ray process of the user),
no fixed ports, no shared paths. Modules with the most slow tests are collected first, so that the
long modules start at once on separate workers rather than one of them trailing at the end.
"""

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(backend_uri: str, artifact_root: Path) -> tuple[subprocess.Popen, str]:
    """A real MLflow tracking server on 127.0.0.1 over ``backend_uri``, starting (in its own process
    group): (process, URI). ``wait_for_mlflow_server`` waits until it answers; ``stop_mlflow_server`` ends it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", backend_uri, "--default-artifact-root", str(artifact_root), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def wait_for_mlflow_server(uri: str, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            return
        except OSError:
            time.sleep(1)
    pytest.fail("mlflow server did not start")


def stop_mlflow_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def kill_session(session: int, grace_s: float = 0.0) -> None:
    """End every process whose session id is ``session`` (a process started with
    ``start_new_session=True`` has its pid as session id; Ray's daemons and workers stay in the session
    of the ``ray start`` or driver that started them, though in process groups of their own): SIGTERM
    first when ``grace_s`` > 0, SIGKILL for whatever is left after it."""

    def members() -> list[int]:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:
                found.append(int(stat.parent.name))
        return found

    def send(sig: signal.Signals) -> None:
        for pid in members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    if grace_s > 0:
        send(signal.SIGTERM)
        deadline = time.time() + grace_s
        while members() and time.time() < deadline:
            time.sleep(0.5)
    send(signal.SIGKILL)


def pytest_collection_modifyitems(config, items):
    """Modules with more slow tests first (a stable sort: the order within a module is kept); see the
    module docstring."""
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@contextlib.contextmanager
def running_mlflow_server(backend_uri: str, artifact_root: Path):
    """A real MLflow tracking server on 127.0.0.1 over ``backend_uri``: yields its URI once it answers."""
    process, uri = start_mlflow_server(backend_uri, artifact_root)
    try:
        wait_for_mlflow_server(uri)
        yield uri
    finally:
        stop_mlflow_server(process)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    with running_mlflow_server(f"sqlite:///{root / 'mlflow.db'}", root / "art") as uri:
        yield uri
