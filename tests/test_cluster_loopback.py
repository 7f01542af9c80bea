"""A real two-node Ray cluster on loopback with token auth: `ray job submit` runs a study whose
trials land on both nodes and in a real MLflow server; the best checkpoint evaluates locally; a
submission without the right token is refused."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest

from conftest import free_port, kill_session

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(args, env, timeout=600):
    return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def submit(args, env, wait_s=180) -> subprocess.CompletedProcess:
    """``ray job submit ARGS``, submitted again while the head's job agent is still starting ("No
    available agent to submit job": no job was created; slow on a busy machine)."""
    deadline = time.time() + wait_s
    while True:
        done = run([BIN / "ray", "job", "submit", *args], env)
        if "No available agent" not in done.stdout + done.stderr or time.time() > deadline:
            return done
        time.sleep(5)


def ray_start(args, env) -> tuple[subprocess.CompletedProcess, int]:
    """``ray start ARGS`` in a session of its own: (its outcome, the session id). The node's daemons and
    workers stay in that session, so ``kill_session`` ends this node and nothing else (``ray stop``
    would end every Ray process of the user: another xdist worker's, a running study's)."""
    process = subprocess.Popen([str(BIN / "ray"), "start", *map(str, args)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    stdout, stderr = process.communicate(timeout=600)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), process.pid


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    home = root / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "OMP_NUM_THREADS": "1", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    port, dashboard = free_port(), free_port()
    short = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # Ray's socket paths must stay < 108 bytes
    sessions = []
    try:
        head, session = ray_start(["--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                                   "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
                                   "--include-dashboard=true", "--num-cpus=1", f"--temp-dir={short / 'h'}",
                                   # not the default 52365: another Ray on this machine (a test worker's,
                                   # a study's) may hold it, and without its agent the head takes no jobs
                                   f"--dashboard-agent-listen-port={free_port()}"], env)
        sessions.append(session)
        assert head.returncode == 0, head.stderr[-2000:]
        worker, session = ray_start([f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                                     f"--temp-dir={short / 'w'}", f"--dashboard-agent-listen-port={free_port()}"],
                                    env)
        sessions.append(session)
        assert worker.returncode == 0, worker.stderr[-2000:]
        yield {"env": env, "dashboard": f"http://127.0.0.1:{dashboard}", "root": root}
    finally:
        for session in reversed(sessions):  # the worker node first, as `ray stop` would
            kill_session(session, grace_s=10)
        shutil.rmtree(short, ignore_errors=True)


@pytest.mark.slow
def test_job_submit_runs_a_study_across_both_nodes(cluster, mlflow_server):
    storage = cluster["root"] / "tune"
    done = submit(["--address", cluster["dashboard"], "--working-dir", REPO,
                   "--runtime-env-json", json.dumps({"env_vars": {"OMP_NUM_THREADS": "1"}}), "--",
                   "rllib-shm", "tune", "tune_configs/cluster_smoke.yaml", "--storage", storage,
                   "--mlflow-uri", mlflow_server], cluster["env"])
    assert done.returncode == 0 and "succeeded" in done.stdout + done.stderr, (done.stdout + done.stderr)[-4000:]

    nodes = set()
    for result in (storage / "cluster_smoke").glob("trial_*/result.json"):
        nodes |= {json.loads(line)["node_id"] for line in result.read_text().splitlines() if line.strip()}
    assert len(nodes) == 2, nodes  # one trial on the head, one on the worker

    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("cluster_smoke")  # a study's own experiment
    runs = client.search_runs([experiment.experiment_id], "tags.`rllib_shm.study` = 'cluster_smoke'")
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    children = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["node_id"] for c in children} == nodes

    best = parents[0].data.tags["best_checkpoint"]
    evaluated = subprocess.run([sys.executable, "-m", "rllib_shm.cli", "evaluate", best,
                                "--episodes", "2", "--no-mlflow"], capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0 and "over 2 episodes" in evaluated.stdout, evaluated.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("token", [None, "0" * 32])
def test_submission_without_the_token_is_refused(cluster, token):
    env = {k: v for k, v in cluster["env"].items() if k != "RAY_AUTH_TOKEN"}
    if token:
        env["RAY_AUTH_TOKEN"] = token
    done = run([BIN / "ray", "job", "submit", "--address", cluster["dashboard"], "--", "echo", "hello"], env,
               timeout=120)
    assert done.returncode != 0
    assert "AuthenticationError" in done.stdout + done.stderr
