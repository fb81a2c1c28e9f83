"""The one-shot payoff study end to end at a tiny size on real Fashion-MNIST images, and its resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD_S, ROOT

PAYOFF = ROOT / "experiments" / "supernet" / "payoff.py"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
SPACES = ["lissnas", "rea_topk", "op_pruning", "regnet", "full"]


def payoff(out: Path) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(PAYOFF), "--seeds", "0", "--out", str(out), "--table", str(out / "table.csv"),
            "--protocol", "space=nb201", "dataset=fashion_mnist", "dataset.resolution=8", "dataset.n_train=2000",
            "dataset.n_val=1000", "dataset.n_test=1000", "space.C=4", "space.N=1", "evaluator=train",
            "evaluator.epochs=1", "evaluator.batch_size=128", "--budget", "40", "--size", "10", "--epochs", "2",
            "--inside", "10", "--uniform", "10", "--uniform-pool", "40", "--workers", "2"]
    return subprocess.run(args, cwd=out.parent, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=HANG_GUARD_S)


@pytest.mark.slow  # ~2 min on 2 busy cores; the stages it drives have fast tests
@pytest.mark.skipif(not DEBIAN.is_dir(), reason=f"{DEBIAN} absent: apt-get install dataset-fashion-mnist")
def test_payoff_trains_a_supernet_per_space_cross_judges_them_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "payoff"
    first = payoff(out)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["space"] for r in rows] == SPACES and {r["seed"] for r in rows} == {0}
    for row in rows:
        assert row["supernet_epochs"] == 2 and -1 <= row["uniform_kendall_tau"] <= 1
        assert 0 <= row["pick_test_acc"] <= 100
    assert all(0 <= r["members_best_val_pick_test"] <= 100 for r in rows[:-1])  # the full space has no members list
    assert rows[0]["size"] == rows[1]["size"] == 10 and rows[-1]["size"] == 15_625
    cross = [json.loads(line) for line in (out / "cross.jsonl").read_text().splitlines()]
    assert {(c["supernet"], c["judged"]) for c in cross} == {(s, j) for s in SPACES for j in SPACES[:-1]}
    summary = (out / "summary.md").read_text()
    assert "own vs full (b/t/w)" in summary and "| lissnas | 10 |" in summary
    table_rows = len((out / "table.csv").read_text().splitlines())
    again = payoff(out)  # everything is on file: nothing is trained or appended again
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "results.jsonl").read_text().count("\n") == len(rows)
    assert (out / "cross.jsonl").read_text().count("\n") == len(cross)
    assert len((out / "table.csv").read_text().splitlines()) == table_rows
