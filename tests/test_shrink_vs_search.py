"""The shrink-vs-search harness end to end on the toy space (a benchmark table trained on digits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD_S, ROOT

HARNESS = ROOT / "experiments" / "shrink_vs_search" / "run.py"


def harness(tmp_path: Path, table: Path) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(HARNESS), "--table", str(table), "--space", "toy", "--datasets", "digits",
            "--budgets", "16", "--seeds", "0-1", "--downstream", "4", "--workers", "1", "--out", str(tmp_path / "out"),
            "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--override", "shrink.sample.n_samples=8",
            "--override", "shrink.pockets.target_size=6", "--override", "shrink.pockets.good_quantile=0.5"]
    return subprocess.run(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)


@pytest.mark.slow  # 20 s; the searchers and metrics it calls have fast tests (tests/pipeline)
def test_harness_compares_every_arm_and_resumes(tmp_path: Path, toy_table: Path) -> None:
    out = harness(tmp_path, toy_table)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1]
    for row in rows:
        assert row["spent"] == 16 and row["emitted_size"] == 6
        for arm in ("lissnas", "lissnas_topk", "rea_region", "ls_region", "rea_ball", "rea_topk", "local_search_topk",
                    "random_topk"):
            assert 0 <= row[f"{arm}/mean"] <= 100 and row[f"{arm}/size"] == 6, arm
        for searcher in ("rea", "local_search", "random", "tpe"):
            assert row[f"down4/{searcher}/shrunk"] >= 0 and row[f"down4/{searcher}/full"] >= 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| toy digits B=16 | 2 | 16 | 6 (" in summary and "(better/tied/worse" not in summary.split("##")[0]
    again = harness(tmp_path, toy_table)
    assert again.returncode == 0 and "2 jobs done, 0 to run" in again.stdout
