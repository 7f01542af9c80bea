"""Test-session defaults and shared fixtures.

One intra-op thread per process (2-core CI machines), set before any test module imports torch.
``mlflow_server``: a real MLflow tracking server on 127.0.0.1 (SQLite backend), one per module;
``running_mlflow_server``: the same over a given backend store.
"""

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
