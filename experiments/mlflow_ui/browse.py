"""Look at a sweep's MLflow record the way a researcher does: in the MLflow UI, in headless Chromium.

Runs a methods x seeds sweep into a fresh SQLite store, serves it with ``mlflow ui``, opens the
pages a researcher reads (the runs table through the project's ``headline`` view, the charts,
the compare view of the jobs, the sweep run, one job run) and saves a screenshot of each. Prints
and writes ``findings.json``: runs made, the columns the runs table shows, the sweep summary.

Needs Debian's ``chromium`` and ``pip install playwright`` (the system browser is used; no
download). Example (NB201 table from ``python -m pipeline.convert_nb201``; about 1 minute):

    python experiments/mlflow_ui/browse.py --out experiments/mlflow_ui/results
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NB201 = ["+space=nb201", "evaluator=benchmark", f"evaluator.path={ROOT / 'benchmarks' / 'nb201.csv'}",
         "dataset=cifar10", "supernet=none", "shrink.budget=100"]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_sweep(store: Path, overrides: list[str], methods: str, seeds: str) -> str:
    """Run the sweep with ``python -m pipeline -m`` into ``store``; return its output."""
    cmd = [sys.executable, "-m", "pipeline", "-m", *overrides, f"shrink={methods}", f"seed={seeds}", "progress=false",
           f"tracking.uri=sqlite:///{store / 'mlflow.db'}", f"hydra.sweep.dir={store / 'sweep'}"]
    done = subprocess.run(cmd, cwd=store, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode:
        raise SystemExit(f"sweep failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def serve(store: Path, port: int) -> subprocess.Popen[bytes]:
    """Start ``mlflow ui`` on the store and wait until it answers."""
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri",
                               f"sqlite:///{store / 'mlflow.db'}", "--port", str(port), "--workers", "1"],
                              cwd=store, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("mlflow ui did not start within 2 minutes")


def shoot(pages: dict[str, str], out: Path, width: int, columns: list[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Open each page in headless Chromium, save ``<name>.png``; return page texts and the ``columns`` seen on screen.

    ``runs_table_as_opened`` is the headline view exactly as a user first meets it (MLflow 3's assistant
    panel open); every other page is shot after closing that panel.
    """
    from playwright.sync_api import sync_playwright

    texts, seen = {}, {}
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 1000})
        for name, url in pages.items():
            page.goto(url)
            page.wait_for_timeout(5000)  # the single-page app fetches runs after load
            close = page.locator("[aria-label='Close']")  # MLflow 3's assistant panel takes a third of the width
            if close.count() and name != "runs_table_as_opened":
                close.first.click()
                page.wait_for_timeout(500)
            page.screenshot(path=str(out / f"{name}.png"))
            texts[name] = page.inner_text("body")
            seen[name] = on_screen(page, columns, width)
        browser.close()
    return texts, seen


# Drawn whole and on top: not cut to "result/mean_te...", and both ends of its text are this element where they lie
# (a column scrolled under MLflow's side panel, or past the table's right edge, is hidden there).
VISIBLE = """e => {
  const r = e.getBoundingClientRect();
  if (r.width === 0 || e.scrollWidth > e.clientWidth || r.right > window.innerWidth) return false;
  const y = r.top + r.height / 2;
  return [r.left + 2, r.right - 2].every(x => { const hit = document.elementFromPoint(x, y);
                                               return hit !== null && (e.contains(hit) || hit.contains(e)); });
}"""


def on_screen(page: Any, names: list[str], width: int) -> list[str]:
    """Return the names (a column header's text, e.g. ``result/mean_test_acc``) drawn whole inside the viewport."""
    shown = []
    for name in names:
        for handle in page.get_by_text(name, exact=True).all():
            if handle.evaluate(VISIBLE):
                shown.append(name)
                break
    return shown


def main() -> None:
    """Run, serve, look, report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "mlflow_ui" / "results")
    parser.add_argument("--methods", default="lissnas,topk,random")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--override", action="append", default=None, help="pipeline overrides (default: NB201)")
    parser.add_argument("--width", type=int, default=1600, help="browser width in px (a laptop screen)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    from mlflow.tracking import MlflowClient

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder)
        run_sweep(store, args.override or NB201, args.methods, args.seeds)
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("nas-shrink").experiment_id
        runs = client.search_runs([experiment], max_results=1000)
        sweep = next(r for r in runs if r.data.tags.get("sweep") == "true")
        jobs = [r for r in runs if r is not sweep]
        port = free_port()
        server = serve(store, port)
        base = f"http://127.0.0.1:{port}/#/experiments/{experiment}"
        ids = json.dumps([r.info.run_id for r in jobs]).replace(" ", "")
        pages = {"runs_table_as_opened": f"{base}/runs?viewStateShareKey=headline",
                 "runs_table": f"{base}/runs?viewStateShareKey=headline",
                 "charts": f"{base}/runs?viewStateShareKey=headline&compareRunsMode=CHART",
                 "compare": f"http://127.0.0.1:{port}/#/compare-runs?runs={ids}&experiments=[\"{experiment}\"]",
                 "sweep_run": f"{base}/runs/{sweep.info.run_id}",
                 "job_run": f"{base}/runs/{jobs[0].info.run_id}"}
        headline = sorted({k for r in jobs for k in r.data.metrics if k.startswith("result/")})
        try:
            texts, seen = shoot(pages, args.out, args.width, headline)
        finally:
            server.terminate()
        findings = {**report(runs, jobs, sweep, texts), "width_px": args.width,
                    "headline_columns_on_screen": {k: seen[k] for k in ("runs_table_as_opened", "runs_table")}}
        (args.out / "findings.json").write_text(json.dumps(findings, indent=2) + "\n")
        print(json.dumps(findings, indent=2))


def report(runs: list[Any], jobs: list[Any], sweep: Any, texts: dict[str, str]) -> dict[str, Any]:
    """Return what the pages showed: run counts, headline columns in the runs table, the sweep summary."""
    table = texts["runs_table"]
    headline = sorted({k for r in jobs for k in r.data.metrics if k.startswith("result/")})
    return {"runs": len(runs), "jobs": len(jobs),
            "job_names": sorted(r.info.run_name for r in jobs),
            "headline_metrics": headline,
            "headline_columns_shown": [k for k in headline if k in table],
            "params_per_job": sorted({len(r.data.params) for r in jobs}),
            "git_commit_on_every_run": all("mlflow.source.git.commit" in r.data.tags for r in runs),
            "dataset_input_on_every_run": all(r.inputs.dataset_inputs for r in runs),
            "sweep_params": sweep.data.params,
            "sweep_summary_in_page": "Mean +- std per setting" in texts["sweep_run"]}


if __name__ == "__main__":
    main()
