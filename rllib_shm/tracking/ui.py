"""Where to look at runs in MLflow's UI, and how to serve a local store (``rllib-shm ui``).

MLflow 3.17's UI chooses between its two products, "GenAI apps & agents" (traces, evaluations)
and "Machine learning" (runs, charts, compare), from the URL's ``workflowType`` parameter
(``machine_learning`` or ``genai``), else from the choice the browser remembers (local storage
``mlflow.workflowType``, GenAI until the user flips the sidebar's switch). The experiment tag
``mlflow.experimentKind`` only picks an experiment's default tab. So every link printed here
carries ``workflowType=machine_learning``, and ``compareRunsMode=CHART`` opens the runs page on
its charts (one chart per metric, every run overlaid, against MLflow's Step: env steps here).

    >>> runs_url("http://127.0.0.1:5000", "3")
    'http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&compareRunsMode=CHART'
    >>> runs_url("http://127.0.0.1:5000", "3", best_first="episode_return_max_mean").split("&", 2)[2]
    'orderByKey=metrics.%60episode_return_max_mean%60&orderByAsc=false'
    >>> serve_command("sqlite:////tmp/results/tune/mlflow.db")
    'rllib-shm ui /tmp/results/tune/mlflow.db'
"""

from __future__ import annotations

import shlex
import urllib.parse
from pathlib import Path

HOST = "127.0.0.1"  # the server binds here unless told otherwise (ARCHITECTURE: no open ports by default)
PORT = 5000
SQLITE = "sqlite:///"
#: where `rllib-shm ui` looks without an argument: the stores `tune` and `train` write by default
DEFAULT_STORES = (Path("results/tune/mlflow.db"), Path("results/mlflow.db"))


def server_base(tracking_uri: str, host: str = HOST, port: int = PORT) -> str:
    """The UI's address: a tracking server's own URL, else the local server ``rllib-shm ui`` starts."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return f"http://{host}:{port}"


def runs_url(base: str, experiment_id: str, charts: bool = True, best_first: str | None = None) -> str:
    """The experiment's runs in the model-training view (on its charts, or its table), ordered by
    the metric ``best_first`` (highest first; the charts show the first ten runs) where given."""
    mode = "CHART" if charts else "TABLE"
    url = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning&compareRunsMode={mode}"
    if best_first:
        url += "&" + urllib.parse.urlencode({"orderByKey": f"metrics.`{best_first}`", "orderByAsc": "false"},
                                            quote_via=urllib.parse.quote)
    return url


def serve_command(tracking_uri: str) -> str | None:
    """The command that serves ``tracking_uri`` for the URL above (None: a tracking server serves itself)."""
    if tracking_uri.startswith(SQLITE):
        return f"rllib-shm ui {shlex.quote(tracking_uri[len(SQLITE):])}"
    if tracking_uri.startswith(("http://", "https://")):
        return None
    return f"rllib-shm ui {shlex.quote(tracking_uri)}"


def where_to_look(tracking_uri: str, experiment_id: str, what: str, best_first: str | None = None) -> str:
    """Two lines: the one URL that opens ``what`` in MLflow, and the command serving it."""
    url = runs_url(server_base(tracking_uri), experiment_id, best_first=best_first)
    command = serve_command(tracking_uri)
    served = f"\n  (serve it first: {command})" if command else ""
    return f"compare {what} in MLflow: {url}{served}"


def store_uri(store: str | None) -> str:
    """``rllib-shm ui``'s argument as a tracking URI: a URI as given, a SQLite file, a directory
    holding ``mlflow.db``; without one, the first of ``DEFAULT_STORES`` that exists."""
    if store and "://" in store:
        return store
    if store is None:
        found = next((path for path in DEFAULT_STORES if path.is_file()), None)
        if found is None:
            raise ValueError(f"no MLflow store at {[str(p) for p in DEFAULT_STORES]} (where `rllib-shm tune` and "
                             "`rllib-shm train` write by default): pass the store, e.g. rllib-shm ui "
                             "results/tune/mlflow.db")
        return f"{SQLITE}{found.resolve()}"
    path = Path(store)
    if path.is_dir():
        path = path / "mlflow.db"
    if not path.is_file():
        raise ValueError(f"MLflow store {store!r}: expected a tracking URI, an mlflow.db file or a directory holding "
                         f"one (e.g. results/tune), and {str(path)!r} does not exist")
    return f"{SQLITE}{path.resolve()}"
