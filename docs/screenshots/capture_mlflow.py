"""Screenshots of a study in MLflow's UI, as a reader sees it after `rllib-shm tune`: the
experiments list, the study's runs table, its charts (episode_return_mean against env steps, every
trial overlaid) and the compare page. Writes PNGs for docs/comparing-runs.md.

Not run in CI. It needs Chromium and Playwright for Python, installed from the package registries
(no browser download):

    apt-get install -y chromium
    pip install playwright            # never `playwright install`: it downloads a browser

Rerun (about 5 min for the study on 2 cores, then a minute here):

    rllib-shm tune tune_configs/quickstart.yaml --storage /tmp/shots/tune
    python docs/screenshots/capture_mlflow.py /tmp/shots/tune/mlflow.db --study quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OUT = Path(__file__).resolve().parents[1] / "images" / "mlflow"


def serve(store: str, port: int) -> subprocess.Popen:
    """`rllib-shm ui STORE --port PORT` in its own session, once it answers."""
    process = subprocess.Popen([sys.executable, "-m", "rllib_shm.cli", "ui", store, "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return process
        except OSError:
            time.sleep(1)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("the MLflow server did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", help="the study's mlflow.db")
    parser.add_argument("--study", default="quickstart")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import mlflow
    from playwright.sync_api import sync_playwright

    from rllib_shm.tracking.ui import runs_url

    client = mlflow.MlflowClient(f"sqlite:///{Path(args.store).resolve()}")
    experiment = client.get_experiment_by_name(args.study)
    trials = client.search_runs([experiment.experiment_id], "tags.kind = 'trial'")
    base = f"http://127.0.0.1:{args.port}"
    args.out.mkdir(parents=True, exist_ok=True)
    server = serve(args.store, args.port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})

            def buttons_right_of(text: str, within: float = 10_000):
                """The buttons on the line of the first visible ``text``, right of it, left to right."""
                box = page.get_by_text(text, exact=True).first.bounding_box()
                middle = box["y"] + box["height"] / 2
                found = [b for b in page.get_by_role("button").all()
                         if (r := b.bounding_box()) and abs(r["y"] + r["height"] / 2 - middle) < 12
                         and box["x"] < r["x"] < box["x"] + within]
                return sorted(found, key=lambda b: b.bounding_box()["x"])

            def close_assistant() -> None:
                """MLflow 3.17 opens its "MLflow Assistant" side panel; close it (the X right of its title)."""
                titles = [t for t in page.get_by_text("MLflow Assistant", exact=True).all() if t.is_visible()]
                if not titles:
                    return
                box = titles[0].bounding_box()
                buttons = [b for b in page.get_by_role("button").all()
                           if b.is_visible() and (r := b.bounding_box()) and abs(r["y"] - box["y"]) < 25
                           and r["x"] > box["x"]]
                if buttons:
                    max(buttons, key=lambda b: b.bounding_box()["x"]).click()
                    time.sleep(1)

            def shot(url: str, name: str, wait_for: str, prepare=None) -> None:
                page.goto(url)
                page.get_by_text(wait_for).first.wait_for(timeout=60_000)
                time.sleep(2)
                close_assistant()
                if prepare:
                    prepare()
                time.sleep(4)  # charts animate in
                close_assistant()
                page.screenshot(path=str(args.out / name))
                print(f"wrote {args.out / name}")

            metric = "episode_return_max_mean"
            shot(f"{base}/#/experiments?workflowType=machine_learning", "experiments.png", args.study)

            shot(runs_url(base, experiment.experiment_id, charts=False, best_first=metric), "runs_table.png",
                 trials[0].info.run_name)

            def return_chart():
                """Only the return charts, and episode_return_mean enlarged (its legend names every run)."""
                page.get_by_placeholder("Search metric charts").first.fill("episode_return")
                time.sleep(2)
                buttons_right_of("episode_return_mean", within=400)[0].click()

            shot(runs_url(base, experiment.experiment_id, best_first=metric), "charts.png", trials[0].info.run_name,
                 return_chart)
            ids = json.dumps([run.info.run_id for run in trials])
            query = urllib.parse.urlencode({"runs": ids, "experiments": json.dumps([experiment.experiment_id]),
                                            "workflowType": "machine_learning"})

            def parameters_that_differ():
                toggle = page.get_by_text("Show diff only", exact=True).first
                toggle.click()
                time.sleep(1)
                toggle.scroll_into_view_if_needed()

            shot(f"{base}/#/compare-runs?{query}", "compare.png", "Run details", parameters_that_differ)
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
