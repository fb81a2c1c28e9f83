"""Hydra callback: one MLflow *sweep* run per multirun, parent of every job's run.

The sweep run is created once, before any job starts (so the experiment is created once, not
raced by parallel jobs), and its id is left in the sweep folder for jobs in other processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from spaces.files import atomic_write_text

SWEEP_FILE = "mlflow_sweep_run_id"


def sweep_run_id(sweep_dir: str | Path) -> str | None:
    """Return the sweep run id left in ``sweep_dir``, if any."""
    path = Path(sweep_dir) / SWEEP_FILE
    return path.read_text().strip() if path.exists() else None


class MlflowSweepCallback(Callback):
    """Open the sweep run at multirun start and close it at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import Tracker

        tracker = Tracker(config.tracking.uri, config.tracking.experiment)
        sweep_dir = Path(config.hydra.sweep.dir)
        run = tracker.client.create_run(tracker.experiment_id, run_name=f"sweep {sweep_dir.name}",
                                        tags={"sweep": "true", "sweep_dir": str(sweep_dir.resolve())})
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / SWEEP_FILE, run.info.run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import Tracker

        run_id = sweep_run_id(config.hydra.sweep.dir)
        if run_id:
            Tracker(config.tracking.uri, config.tracking.experiment).client.set_terminated(run_id)
