"""Sweeps that outgrow one process: Hydra's submitit and Ray launchers run the jobs elsewhere, with the
same results and the same MLflow record (one sweep run, its jobs under it) as the basic launcher."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import HANG_GUARD_S

pytestmark = pytest.mark.slow

PLUGINS = {"submitit_local": ("hydra_plugins.hydra_submitit_launcher", "pip install hydra-submitit-launcher"),
           "ray": ("hydra_plugins.hydra_ray_launcher", "pip install hydra-ray-launcher 'ray[default]<3'")}


def sweep(tmp_path: Path, toy_table: Path, name: str, launcher: list[str]) -> dict[str, float]:
    """Run a two-seed sweep under ``launcher``; return the sweep run's jobs' result/mean_score by seed."""
    uri = f"sqlite:///{tmp_path}/{name}.db"
    cmd = [sys.executable, "-m", "pipeline", "-m", *launcher, "space=toy", "evaluator=benchmark",
           f"evaluator.path={toy_table}", "shrink.budget=16", "shrink.sample.n_samples=8", "seed=0,1",
           "progress=false", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path}/{name}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_GUARD_S, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = MlflowClient(uri).search_runs(["1"])
    sweeps = [r for r in runs if r.data.tags.get("sweep") == "true"]
    jobs = [r for r in runs if r.data.tags.get("sweep") != "true"]
    assert len(sweeps) == 1 and len(jobs) == 2
    assert all(r.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for r in jobs)
    assert "sweep/mean_score/all_mean" in sweeps[0].data.metrics  # the summary ran after the jobs
    return {r.data.params["seed"]: r.data.metrics["result/mean_score"] for r in jobs}


@pytest.mark.parametrize("launcher", sorted(PLUGINS))
def test_a_launcher_sweep_matches_the_basic_launcher(tmp_path: Path, toy_table: Path, launcher: str) -> None:
    module, install = PLUGINS[launcher]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs the {launcher} launcher plugin ({install})")
    assert sweep(tmp_path, toy_table, launcher, [f"hydra/launcher={launcher}"]) == sweep(tmp_path, toy_table, "basic", [])
