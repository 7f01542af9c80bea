"""``rllib-shm ui [STORE]``: serve an MLflow store on 127.0.0.1 and print the link to each
experiment's runs in MLflow's model-training view (``tracking/ui.py`` says why the link carries
``workflowType=machine_learning``). Ctrl-C stops the server."""

from __future__ import annotations

import argparse
import subprocess
import sys

from rllib_shm.tracking.ui import HOST, PORT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", nargs="?", help="an mlflow.db file, a directory holding one, or a tracking URI "
                        "(default: results/tune/mlflow.db, else results/mlflow.db: where `tune` and `train` write)")
    parser.add_argument("--port", type=int, default=PORT, help=f"port (default {PORT})")
    parser.add_argument("--host", default=HOST, help=f"address to bind (default {HOST}: this machine only)")
    parser.add_argument("--print-only", action="store_true", help="print the links and exit without serving")


def run(args: argparse.Namespace) -> int:
    import mlflow

    from rllib_shm.tracking import check_tracking_uri
    from rllib_shm.tracking.ui import runs_url, server_base, store_uri

    uri = store_uri(args.store)
    check_tracking_uri(uri)
    base = server_base(uri, "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host, args.port)
    experiments = [e for e in mlflow.MlflowClient(tracking_uri=uri).search_experiments()
                   if e.name != "Default" or e.experiment_id != "0"]
    print(f"MLflow store {uri}")
    for experiment in sorted(experiments, key=lambda e: int(e.experiment_id) if e.experiment_id.isdigit() else 0):
        print(f"  {experiment.name}: {runs_url(base, experiment.experiment_id)}")
    if not experiments:
        print("  (no experiments yet)")
    if args.print_only or uri.startswith(("http://", "https://")):
        return 0
    print(f"serving on {base} (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--host", args.host, "--port", str(args.port)]
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 0
