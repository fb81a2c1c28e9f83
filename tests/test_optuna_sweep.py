"""Hydra's Optuna sweeper tunes LISSNAS's knobs: 8 trials, one MLflow sweep run, the objective returned."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import HANG_GUARD_S

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                       reason='needs hydra-optuna-sweeper (pip install --no-deps "hydra-optuna-sweeper==1.3.0")'),
]


def test_an_optuna_sweep_of_eight_trials_logs_under_one_sweep_run(tmp_path: Path, toy_table: Path) -> None:
    # The sweeper flags and knobs of experiments/optuna_sweep/README.md, on the toy space.
    cmd = [sys.executable, "-m", "pipeline", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=8",
           "hydra.sweeper.direction=maximize", "hydra.sweeper.sampler.seed=0", "objective=result/mean_score",
           "space=toy", "evaluator=benchmark", f"evaluator.path={toy_table}", "shrink.budget=20",
           "shrink.sample.n_samples=8", "shrink.pockets.radius=choice(1,2)", "shrink.pockets.good_quantile=interval(0.5,0.9)",
           "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.sweep.dir={tmp_path}/sweep"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_GUARD_S, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(["1"])
    sweep = [r for r in runs if r.data.tags.get("sweep") == "true"]
    assert len(runs) == 9 and len(sweep) == 1
    assert all(r.data.tags["mlflow.parentRunId"] == sweep[0].info.run_id for r in runs if r is not sweep[0])
    assert set(sweep[0].data.params) == {"sweep.shrink.pockets.radius", "sweep.shrink.pockets.good_quantile"}
    best = float(sweep[0].data.tags["best"].split("best_value:")[1])
    assert best == max(r.data.metrics["result/mean_score"] for r in runs if r is not sweep[0])
