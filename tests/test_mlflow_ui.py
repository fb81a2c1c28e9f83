"""The MLflow record in a real browser: a 3-method x 2-seed sweep, seen through the headline view."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD_S

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium (apt-get install chromium)"),
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None, reason="needs playwright (pip install playwright)"),
]


def test_a_sweep_reads_at_a_glance_in_the_mlflow_ui(tmp_path: Path, toy_table: Path) -> None:
    overrides = ["space=toy", "evaluator=benchmark", f"evaluator.path={toy_table}", "shrink.budget=20",
                 "shrink.sample.n_samples=8"]
    cmd = [sys.executable, str(ROOT / "experiments" / "mlflow_ui" / "browse.py"), "--out", str(tmp_path / "shots"),
           *[f"--override={o}" for o in overrides]]
    subprocess.run(cmd, check=True, timeout=HANG_GUARD_S, cwd=tmp_path)
    found = json.loads((tmp_path / "shots" / "findings.json").read_text())
    assert found["runs"] == 1 + 6 and found["jobs"] == 6  # the bar: at most 1 + 6 runs
    assert found["headline_columns_shown"] == found["headline_metrics"] and "result/mean_test_acc" in found[
        "headline_metrics"]
    # At 1600 px, as a user first meets it (MLflow's side panel open): the ranking column and the regret, whole.
    assert {"result/mean_test_acc", "result/regret"} <= set(found["headline_columns_on_screen"]["runs_table_as_opened"])
    assert set(found["headline_columns_on_screen"]["runs_table"]) >= {"result/mean_test_acc", "result/regret",
                                                                      "result/recall_top1pct", "result/size"}
    assert found["git_commit_on_every_run"] and found["dataset_input_on_every_run"] and found["sweep_summary_in_page"]
    assert {p.name for p in (tmp_path / "shots").glob("*.png")} >= {"runs_table.png", "compare.png", "sweep_run.png"}
