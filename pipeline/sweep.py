"""Hydra callback: one MLflow *sweep* run per multirun, parent of every job's run.

The sweep run is created once, before any job starts (so the experiment is created once, not
raced by parallel jobs); its id and the swept keys are left in the sweep folder for jobs in other
processes. When the jobs are done it carries the summary: the swept keys as params, a table of
every job's headline ``result/*`` metrics, their mean +- std per setting (seed aside) as metrics,
and one figure comparing the settings.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from spaces.files import atomic_write_text, strict_dumps, strict_loads

SWEEP_FILE = "mlflow_sweep.json"
SWEEP_DIR: list[Path] = []  # the folder of the sweep in progress in this process, for the Ctrl-C message


def sweep_record(sweep_dir: str | Path) -> dict[str, Any]:
    """Return the sweep run id and swept keys left in ``sweep_dir`` ({} when absent)."""
    path = Path(sweep_dir) / SWEEP_FILE
    return strict_loads(path.read_text()) if path.exists() else {}


def swept_keys(overrides: list[str]) -> dict[str, str]:
    """Return the overrides that vary across the sweep's jobs (comma lists, ranges, choice/glob sweeps)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return {o.get_key_element().lstrip("+~"): (o.input_line or "").partition("=")[2] for o in parsed
            if o.is_sweep_override()}


class MlflowSweepCallback(Callback):
    """Open the sweep run at multirun start, summarise and close it at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.record import param_text
        from pipeline.tracking import Tracker

        tracker = Tracker(config.tracking.uri, config.tracking.experiment)
        sweep_dir = Path(config.hydra.sweep.dir)
        SWEEP_DIR[:] = [sweep_dir]
        swept = swept_keys(list(config.hydra.overrides.task))
        name = "sweep " + " ".join(f"{k.split('.')[-1]}={v}" for k, v in swept.items())
        from pipeline.record import headline_view, lineage_tags

        run = tracker.client.create_run(tracker.experiment_id, run_name=name[:250],
                                        tags={"sweep": "true", "sweep_dir": str(sweep_dir.resolve()),
                                              **lineage_tags()})
        tracker.params(run.info.run_id, {f"sweep.{k}": param_text(v) for k, v in swept.items()})
        headline_view(tracker)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sweep_dir / SWEEP_FILE, strict_dumps({"run_id": run.info.run_id, "swept": list(swept)}))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from pipeline.tracking import Tracker

        found = sweep_record(config.hydra.sweep.dir)
        if found:
            tracker = Tracker(config.tracking.uri, config.tracking.experiment)
            text = summarise(tracker, found["run_id"], [k for k in found["swept"] if k != "seed"])
            if text:  # the verdict a sweep was run for, on the console as in the sweep run's note
                print(f"\n{text.rstrip()}", flush=True)
            print(f"Sweep run: {tracker.url(found['run_id'])}", flush=True)
            best = Path(config.hydra.sweep.dir) / "optimization_results.yaml"  # written by hydra-optuna-sweeper
            if best.is_file():
                tracker.artifact(found["run_id"], best, "summary")
                tracker.tags(found["run_id"], {"best": best.read_text()[:5000]})
            tracker.client.set_terminated(found["run_id"])


def summarise(tracker: Any, sweep_id: str, group_keys: list[str]) -> str:
    """Put the jobs' table, per-setting mean +- std and a comparison figure on the sweep run; return the table's text."""
    from pipeline.sweep_summary import job_rows, markdown, mean_std, plot

    jobs = tracker.client.search_runs([tracker.experiment_id], f"tags.mlflow.parentRunId = '{sweep_id}'",
                                      max_results=50000, order_by=["attributes.start_time ASC"])
    rows = job_rows(jobs, group_keys)
    if not rows:
        return ""
    share_inputs(tracker, sweep_id, jobs)
    stats = mean_std(rows)
    # sweep/<metric>/<setting>_mean: one chart section per metric, holding every setting.
    tracker.metrics(sweep_id, {f"sweep/{metric.removeprefix('result/')}/{group}_{which}": float(f"{value:.6g}")
                               for group, figures in stats.items() for metric, pair in figures.items()
                               for which, value in zip(("mean", "std"), pair, strict=True)})
    text = markdown(rows, stats)
    tracker.tags(sweep_id, {"mlflow.note.content": text[:60000]})
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "jobs.md").write_text(text)
        from pipeline.artifacts import write_rows

        write_rows(Path(folder) / "jobs.csv", rows)
        plot(Path(folder) / "comparison.png", rows)
        tracker.artifacts(sweep_id, Path(folder), "summary")
    return text


def share_inputs(tracker: Any, sweep_id: str, jobs: list[Any]) -> None:
    """Log the jobs' dataset inputs (each once) on the sweep run: what the whole sweep read."""
    from mlflow.entities import DatasetInput

    seen = {(d.dataset.name, d.dataset.digest): d for job in jobs for d in job.inputs.dataset_inputs}
    if seen:
        tracker.client.log_inputs(sweep_id, datasets=[DatasetInput(d.dataset, d.tags) for d in seen.values()])

