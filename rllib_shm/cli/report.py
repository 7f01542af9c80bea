"""``rllib-shm report``: a study's results as the paper's Table-1 view, learning curves, the budget
against the paper's and the study's completeness (markdown + PNG), logged to its MLflow parent run."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", nargs="*", help="study name (tune.name): reads <storage>/<name>/study.yaml and "
                        "the study's MLflow runs; several names make one report of their runs together (e.g. the "
                        "memory-length benchmark's families; needs --out)")
    parser.add_argument("--experiment", help="instead of a study: every training run of this MLflow experiment")
    parser.add_argument("--runs", nargs="+", metavar="RUN_ID", default=[],
                        help="instead of a study: these MLflow runs")
    parser.add_argument("--out", type=Path,
                        help="directory for report.md, table.csv and curves_<task>.png (created if needed; default "
                             "<storage>/<study>/report for a study, results/reports/<experiment> for --experiment; "
                             "existing report files there are kept unless --force)")
    parser.add_argument("--storage", default="results/tune",
                        help="Tune storage of the study (default results/tune, as tune.storage_path)")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, then the study's "
                        "run.mlflow_uri, then sqlite:///<storage>/mlflow.db, as `rllib-shm tune`)")
    parser.add_argument("--threshold", metavar="RETURN",
                        help="add the env steps at which each run's mean return first reached RETURN")
    parser.add_argument("--force", action="store_true", help="overwrite existing report files in --out")
    parser.add_argument("--no-mlflow-log", dest="log_to_mlflow", action="store_false",
                        help="do not log the report as artifacts of the study's MLflow parent run")


def run(args: argparse.Namespace) -> int:
    from rllib_shm.reports.report import ReportRequest, make_report, threshold_value

    threshold = None if args.threshold is None else threshold_value(args.threshold)
    names = tuple(args.study)
    make_report(ReportRequest(out=args.out, study=names[0] if len(names) == 1 else None,
                              studies=names if len(names) > 1 else (), experiment=args.experiment,
                              run_ids=tuple(args.runs),
                              storage=args.storage, mlflow_uri=args.mlflow_uri, threshold=threshold,
                              force=args.force, log_to_mlflow=args.log_to_mlflow))
    return 0
