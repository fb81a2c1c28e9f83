"""Compose -> instantiate -> loop rounds x stages; owns the MLflow runs and the stopping rule.

Round 0 runs ``sample -> evaluate -> graph -> pockets``; later rounds run
``explore -> evaluate -> graph -> pockets`` until the mean pocket score stops improving for
``patience`` rounds, the evaluation budget is spent, nothing is left to explore, or
``max_rounds`` is reached. ``emit`` then writes the shrunk space of the best round.
Every stage writes files into its own folder and a ``_done.json`` marker; a rerun on the same
run directory (``resume=DIR``) reuses finished stages and the evaluate stage's journal.
"""

from __future__ import annotations

import math
import subprocess
import sys
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.artifacts import read_json, write_json, write_rows
from pipeline.context import StageContext, round_dir
from pipeline.errors import ConfigError
from pipeline.evaluators.base import Evaluator
from pipeline.stages import emit, evaluate, explore, graph, pockets, sample
from pipeline.tracking import Tracker, flatten
from spaces.base import SearchSpace

STAGES: dict[str, ModuleType] = {
    "sample": sample, "explore": explore, "evaluate": evaluate,
    "graph": graph, "pockets": pockets, "emit": emit,
}
FIRST_ROUND = ("sample", "evaluate", "graph", "pockets")
LATER_ROUNDS = ("explore", "evaluate", "graph", "pockets")
ROUND_COLUMNS = ("evaluated", "evaluated_total", "pockets", "shrunk_size",
                 "mean_pocket_score", "best_pocket_score", "best_overall")


@dataclass(frozen=True)
class LoopCfg:
    """Knobs of the round loop itself."""

    budget: int  # total architectures evaluated in the run, samples and explored neighbours
    max_rounds: int  # hard cap on rounds
    patience: int  # rounds without improvement of the mean pocket score before stopping
    min_delta: float  # an improvement smaller than this counts as none


@dataclass(frozen=True)
class RunResult:
    """What an invocation produced."""

    run_id: str
    run_dir: Path
    shrunk_space: Path
    rounds: list[dict[str, float]]
    stop_reason: str


def stage_configs(shrink: dict[str, Any]) -> tuple[LoopCfg, dict[str, Any]]:
    """Split ``conf/shrink`` into the loop's and each stage's typed config; reject unknown keys."""
    owners = {"loop": LoopCfg, **{n: m.Cfg for n, m in STAGES.items() if n != "emit"}}
    known = {f.name for cls in owners.values() for f in fields(cls)}
    unknown = sorted(set(shrink) - known)
    if unknown:
        raise ConfigError(f"shrink.{unknown[0]} is not a shrink setting; known: {', '.join(sorted(known))}")
    built = {}
    for name, cls in owners.items():
        try:
            built[name] = cls(**{f.name: shrink[f.name] for f in fields(cls) if f.name in shrink})
        except TypeError as err:
            raise ConfigError(f"shrink config for {name}: {err}") from None
    _check_ranges(shrink)
    return built.pop("loop"), built


def _check_ranges(shrink: dict[str, Any]) -> None:
    """Reject values outside their meaningful range, naming the key."""
    positive = ("budget", "max_rounds", "patience", "n_samples", "seeds_per_round",
                "neighbors_per_seed", "link_distance", "max_pockets", "min_pocket_size")
    for key in positive:
        if key in shrink and (not isinstance(shrink[key], int) or shrink[key] < 1):
            raise ConfigError(f"shrink.{key}={shrink[key]!r} must be an integer >= 1")
    for key in ("radius", "fresh_samples"):
        if key in shrink and (not isinstance(shrink[key], int) or shrink[key] < 0):
            raise ConfigError(f"shrink.{key}={shrink[key]!r} must be an integer >= 0")
    if not 0.0 <= float(shrink.get("good_quantile", 0.5)) < 1.0:
        raise ConfigError(f"shrink.good_quantile={shrink['good_quantile']!r} must lie in [0, 1)")


def build(cfg: DictConfig) -> tuple[SearchSpace, Evaluator]:
    """Instantiate the space, dataset and evaluator, unwrapping Hydra's errors to the domain one."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        space = instantiate(cfg.space)
        dataset = instantiate(cfg.dataset)
        evaluator = instantiate(cfg.evaluator, space=space, dataset=dataset)
    except InstantiationException as err:
        cause = err.__cause__
        raise (cause if isinstance(cause, ValueError | RuntimeError) else ConfigError(str(err))) from None
    return space, evaluator


def git_sha() -> str:
    """Return the project's git commit, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def stage_rng(seed: int, round_index: int, stage: str) -> np.random.Generator:
    """Derive the rng of one stage of one round from the top-level seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, round_index + 1, zlib.crc32(stage.encode())]))


def _manifest_config(cfg: DictConfig) -> dict[str, Any]:
    """Return the config parts that determine results (what a resumed run must match)."""
    keep = ("seed", "space", "dataset", "evaluator", "shrink")
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if k != "seed" else cfg[k] for k in keep}


def prepare_run_dir(run_dir: Path, cfg: DictConfig) -> None:
    """Create the run folder or, when it exists, check it was made by the same config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = run_dir / "run.json"
    current = _manifest_config(cfg)
    if manifest.exists():
        recorded = read_json(manifest)["config"]
        diff = sorted(k for k in flatten(current).keys() | flatten(recorded).keys()
                      if flatten(current).get(k) != flatten(recorded).get(k))
        if diff:
            raise ConfigError(
                f"resume: {run_dir} was made with a different config ({', '.join(diff[:5])}); "
                "resume with the same overrides or start a new run"
            )
    else:
        write_json(manifest, {"config": current})


class Runner:
    """Runs the stages of one invocation, logging each as a nested MLflow run."""

    def __init__(self, cfg: DictConfig, run_dir: Path, tracker: Tracker, progress: bool = True) -> None:
        self.cfg, self.run_dir, self.tracker, self.progress = cfg, run_dir, tracker, progress
        shrink = OmegaConf.to_container(cfg.shrink, resolve=True)
        self.loop, self.stage_cfgs = stage_configs(shrink)
        self.stage_cfgs["evaluate"] = evaluate.Cfg(progress=progress)
        self.space, self.evaluator = build(cfg)
        self.seed = int(cfg.seed)

    def stage(self, name: str, round_index: int, parent: str, cfg: Any = None) -> dict[str, float]:
        """Run (or reuse) one stage and log it as a nested run."""
        folder = self.run_dir / name if name == "emit" else round_dir(self.run_dir, round_index) / name
        ctx = StageContext(self.space, self.evaluator, stage_rng(self.seed, round_index, name),
                           self.run_dir, round_index, name, folder, self.loop.budget)
        cfg = cfg if cfg is not None else self.stage_cfgs[name]
        marker = folder / "_done.json"
        with self.tracker.run(f"{name}" if name == "emit" else f"r{round_index}/{name}", parent,
                              {"stage": name, "round": str(round_index)}) as run_id:
            reused = marker.exists()
            metrics = read_json(marker)["metrics"] if reused else STAGES[name].run(ctx, cfg)
            if not reused:
                write_json(marker, {"metrics": metrics})
            self.tracker.params(run_id, {k: v for k, v in flatten(asdict(cfg)).items() if k != "progress"})
            self.tracker.tags(run_id, {"reused": str(reused).lower()})
            self.tracker.metrics(run_id, metrics, step=max(round_index, 0))
            self.tracker.artifacts(run_id, folder)
        return metrics

    def rounds(self, parent: str) -> tuple[list[dict[str, float]], str]:
        """Loop rounds until the stopping rule fires; return per-round metrics and the reason."""
        history: list[dict[str, float]] = []
        best, stale = -math.inf, 0
        print(_header(), flush=True)
        for r in range(self.loop.max_rounds):
            with self.tracker.run(f"round {r}", parent, {"round": str(r)}) as round_run:
                row = self._round(r, round_run)
            if row is None:
                return history, "converged: every pocket member's neighbourhood is explored"
            history.append(row)
            self.tracker.metrics(parent, {k: row[k] for k in ROUND_COLUMNS}, step=r)
            print(_row(r, row), flush=True)
            objective = row["mean_pocket_score"]
            # Round 0 only samples; pockets grown from explored localities start at round 1.
            if r > 0 and not math.isnan(objective):
                best, stale = (objective, 0) if objective > best + self.loop.min_delta else (best, stale + 1)
            if stale >= self.loop.patience:
                return history, f"plateau: mean pocket score did not improve for {stale} round(s)"
            if row["evaluated_total"] >= self.loop.budget:
                return history, f"budget: {int(row['evaluated_total'])} evaluations spent"
        return history, f"max_rounds: {self.loop.max_rounds} rounds run"

    def _round(self, r: int, round_run: str) -> dict[str, float] | None:
        """Run one round's stages; None when exploration has nothing left to propose."""
        row: dict[str, float] = {}
        for name in FIRST_ROUND if r == 0 else LATER_ROUNDS:
            metrics = self.stage(name, r, round_run)
            if name == "explore" and metrics["proposed"] == 0:
                return None
            row.update(metrics)
        return row


def _header() -> str:
    """Return the per-round table header."""
    return "round   new  total  pockets  size  mean_pocket  best_pocket  best_overall"


def _row(r: int, row: dict[str, float]) -> str:
    """Return one line of the per-round table."""
    return (f"{r:>5} {int(row['evaluated']):>5} {int(row['evaluated_total']):>6} {int(row['pockets']):>8} "
            f"{int(row['shrunk_size']):>5} {row['mean_pocket_score']:>12.3f} {row['best_pocket_score']:>12.3f} "
            f"{row['best_overall']:>13.3f}")


def run(cfg: DictConfig, run_dir: Path, hydra_dir: Path | None = None) -> RunResult:
    """Run the whole pipeline into ``run_dir`` and log it to MLflow."""
    prepare_run_dir(run_dir, cfg)
    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment)
    runner = Runner(cfg, run_dir, tracker, progress=bool(cfg.progress))
    tags = {**runner.evaluator.tags(), "space": runner.space.name, "seed": str(cfg.seed),
            "git_sha": git_sha(), "run_dir": str(run_dir.resolve())}
    with tracker.run(cfg.tracking.run_name or f"{runner.space.name}-{runner.evaluator.name}-seed{cfg.seed}",
                     None, tags) as parent:
        tracker.params(parent, flatten(OmegaConf.to_container(cfg, resolve=True)))
        history, reason = runner.rounds(parent)
        tracker.tags(parent, {"stop_reason": reason})
        provenance = {"run_id": parent, "seed": int(cfg.seed), "git_sha": tags["git_sha"],
                      "config": _manifest_config(cfg), "stop_reason": reason}
        final = runner.stage("emit", len(history) - 1 if history else 0, parent, emit.Cfg(provenance))
        tracker.metrics(parent, {f"final_{k}": v for k, v in final.items()})
        write_rows(run_dir / "rounds.csv", [{"round": i, **row} for i, row in enumerate(history)])
        shrunk_path = run_dir / "emit" / "shrunk_space.json"
        for path in (shrunk_path, run_dir / "emit" / "edf.png", run_dir / "rounds.csv"):
            tracker.artifact(parent, path)
        if hydra_dir is not None:
            tracker.artifacts(parent, hydra_dir, "hydra")
    print(f"stopped: {reason}", file=sys.stdout)
    return RunResult(parent, run_dir, shrunk_path, history, reason)
