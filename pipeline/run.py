"""Compose -> instantiate -> loop rounds x stages; owns the MLflow runs and the stopping rule.

A shrinkage *method* (``shrink.method``) is a plan of stages per round:

- ``lissnas``: round 0 ``sample -> evaluate -> graph -> pockets``; later rounds
  ``explore -> evaluate -> graph -> pockets`` until the budget is spent or the plateau rule
  fires (with ``region=surrogate``: the mean of the ten best scores has not improved for
  ``patience`` rounds, and the last round is emitted; otherwise the mean pocket score, and the
  best round is emitted).
- ``random`` / ``topk``: one round ``sample -> evaluate -> select``.
- ``op_pruning`` / ``regnet``: every round ``sample -> evaluate -> refine`` until the restriction
  stops changing or reaches its target size; the last round is emitted.

Every method also stops when the evaluation budget is spent or after ``max_rounds``; ``emit``
then writes the shrunk space. Every stage writes files into its own folder and a ``_done.json``
marker; a rerun on the same run directory (``resume=DIR``) reuses finished stages and the
evaluate stage's journal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from pipeline import record
from pipeline.artifacts import read_json, write_json, write_rows
from pipeline.console import summary_lines
from pipeline.evaluators.base import Evaluator
from pipeline.locks import exclusive
from pipeline.loop import Runner
from pipeline.rundir import LOCK_FILE, PARENT_FILE, manifest_config, prepare_run_dir, recorded_parent
from pipeline.stages import emit
from pipeline.tracking import Live, Tracker, system_metrics


@dataclass(frozen=True)
class RunResult:
    """What an invocation produced."""

    run_id: str
    run_dir: Path
    shrunk_space: Path
    rounds: list[dict[str, float]]
    stop_reason: str
    objective: float | None = None  # the figure named by `objective`, returned to a Hydra sweeper
    url: str = ""  # the run in the MLflow UI's training view
    table_url: str = ""  # the experiment's runs table with the headline columns


def run(cfg: DictConfig, run_dir: Path, hydra_dir: Path | None = None, sweep_parent: str | None = None,
        overrides: list[str] | None = None, swept: list[str] | None = None) -> RunResult:
    """Run the whole pipeline into ``run_dir`` and log it to MLflow (under ``sweep_parent`` if given).

    ``overrides`` (the command line's) and ``swept`` (a sweep's varying keys) name the run.
    """
    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment)  # an unreachable server is refused first
    with exclusive(run_dir / LOCK_FILE, f"run folder {run_dir}"):
        prepare_run_dir(run_dir, cfg)
        runner = Runner(cfg, run_dir, tracker, progress=bool(cfg.progress))
        if cfg.get("objective"):
            record.check_objective(str(cfg.objective), runner.truth is not None, bool(runner.supernet_cfgs))
        lineage = record.lineage_tags()
        tags = {**runner.evaluator.tags(), "space": runner.space.name, "seed": str(cfg.seed),
                "method": runner.loop.method, "git_sha": lineage.get("mlflow.source.git.commit", "unknown"),
                "run_dir": str(run_dir.resolve()), "overrides": json.dumps(overrides or []), **lineage}
        name = cfg.tracking.run_name or record.run_name(
            runner.loop.method, runner.space.name, _data_name(cfg, runner.evaluator), int(cfg.seed),
            record.name_overrides(overrides or [], swept))
        try:
            return _run(cfg, run_dir, hydra_dir, sweep_parent, tracker, runner, tags, name)
        finally:
            runner.executor.close()


def _data_name(cfg: DictConfig, evaluator: Evaluator) -> str:
    """Return what the run's scores come from: the dataset, and the evaluator unless it trains on it."""
    dataset = evaluator.tags().get("dataset") or (cfg.dataset.get("name") if cfg.get("dataset") else None) or "-"
    return str(dataset) if evaluator.name == "train" else f"{dataset}-{evaluator.name}"


def _emit(cfg: DictConfig, run_dir: Path, tracker: Tracker, runner: Runner, parent: str,
          tags: dict[str, str]) -> tuple[Path, dict[str, float]]:
    """Emit the shrunk space, train and search the supernet when configured; return its path and the run's figures."""
    history, reason = runner.history, runner.reason
    provenance = {"run_id": parent, "seed": int(cfg.seed), "method": runner.loop.method, "git_sha": tags["git_sha"],
                  "config": manifest_config(cfg), "stop_reason": reason, "evaluations": int(runner.spent)}
    last = len(history) - 1 if history else 0
    final = runner.stage("emit", last, parent, emit.Cfg(provenance=provenance, choose=runner.choose))
    label = "predicted" if runner.region == "surrogate" else "unevaluated"
    for line in summary_lines(final, runner.space, len(history), runner.spent, runner.loop.budget, label):
        print(line, flush=True)
    figures = runner.figures("emit", final)
    for name, stage_cfg in runner.supernet_cfgs.items():
        made = runner.stage(name, last, parent, stage_cfg)
        figures.update(runner.figures(name, made))
        print(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in made.items()), flush=True)
    if (run_dir / "search" / "search.json").exists():
        print(f"best subnet found: {read_json(run_dir / 'search' / 'search.json')['arch']}")
    write_rows(run_dir / "rounds.csv", [{"round": i, **row} for i, row in enumerate(history)])
    tracker.artifact(parent, run_dir / "rounds.csv")
    tracker.artifact(parent, run_dir / "emit" / "shrunk_space.json")  # the documented runs:/<id>/shrunk_space.json
    if runner.encoder_file is not None and runner.encoder_file.is_file():
        tracker.artifact(parent, runner.encoder_file, "embedding")
    return run_dir / "emit" / "shrunk_space.json", figures


def _system_metrics_on(cfg: DictConfig, runner: Runner) -> bool:
    """Tell whether to sample system metrics: tracking.system_metrics, where auto means the run trains networks."""
    setting = cfg.tracking.get("system_metrics", "auto")  # true, false or auto (checked at composition)
    trains = bool(runner.supernet_cfgs) or runner.evaluator.name == "train"
    return trains if setting == "auto" else bool(setting)


def _run(cfg: DictConfig, run_dir: Path, hydra_dir: Path | None, sweep_parent: str | None, tracker: Tracker,
         runner: Runner, tags: dict[str, str], name: str) -> RunResult:
    """Open the invocation's run, loop the rounds, emit, train the supernet, and upload the run's files."""
    with tracker.run(name, sweep_parent, tags, resume_id=recorded_parent(run_dir, cfg.tracking.uri)) as parent:
        write_json(run_dir / PARENT_FILE, {"run_id": parent, "tracking_uri": cfg.tracking.uri})
        tracker.params(parent, record.user_params(cfg, runner.used_keys()))
        record.log_inputs(tracker, parent, cfg, getattr(runner.evaluator, "path", None),
                          runner.dataset)
        runner.live = Live(tracker, parent, float(cfg.tracking.get("progress_every_s", 5.0)))
        with system_metrics(parent, cfg.tracking.uri, _system_metrics_on(cfg, runner)):
            history, reason = runner.rounds(parent)
            tracker.tags(parent, {"stop_reason": reason})
            shrunk_path, figures = _emit(cfg, run_dir, tracker, runner, parent, tags)
        if hydra_dir is not None and hydra_dir.is_dir():
            tracker.artifacts(parent, hydra_dir, "hydra")
    print(f"stopped: {reason}", file=sys.stdout)
    value = record.objective(str(cfg.objective), figures) if cfg.get("objective") else None
    return RunResult(parent, run_dir, shrunk_path, history, reason, value, tracker.url(parent),
                     record.headline_view(tracker))
