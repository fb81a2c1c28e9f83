"""The round loop: the Runner runs a method's plan of stages round after round, resuming finished stages."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from pipeline import latent, record
from pipeline.artifacts import ARTIFACTS, read_json, write_json
from pipeline.build import (
    STAGES,
    SUPERNET_NODES,
    StageContractError,
    build,
    build_constraints,
    build_executor,
    check_constraints,
    check_plan,
    ground_truth,
    stage_configs,
    supernet_configs,
    warn_unknown_costs,
)
from pipeline.console import round_header, round_row
from pipeline.context import StageContext, round_dir
from pipeline.metrics import space_metrics
from pipeline.plan import FINAL_STAGES
from pipeline.rundir import marker_metrics, move_aside, settings_changed, stage_settings
from pipeline.stages import evaluate, pockets
from pipeline.tracking import Tracker, retry_locked

LATENT_STAGES = ("graph", "explore", "pockets")  # the stages that read the learned locality


ROUND_COLUMNS = ("evaluated", "evaluated_total", "pockets", "shrunk_size", "evaluated_members",
                 "mean_pocket_score", "best_pocket_score", "best_overall", "top10_mean")


def stage_rng(seed: int, round_index: int, stage: str) -> np.random.Generator:
    """Derive the rng of one stage of one round from the top-level seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, round_index + 1, zlib.crc32(stage.encode())]))


class Runner:
    """Runs the stages of one invocation, logging each as a nested MLflow run."""

    def __init__(self, cfg: DictConfig, run_dir: Path, tracker: Tracker, progress: bool = True) -> None:
        self.cfg, self.run_dir, self.tracker = cfg, run_dir, tracker
        self.loop, self.plan, self.stage_cfgs = stage_configs(cfg.shrink)
        self.latent_cfg = self.stage_cfgs.pop("latent", latent.Cfg())
        self.stage_cfgs["evaluate"] = evaluate.Cfg(progress=progress)
        self.space, self.evaluator, self.dataset = build(cfg)
        latent.check(self.space, self.latent_cfg)  # before any evaluation; the encoder itself is built on first use
        cache_root = Path(str(cfg.get("cache_dir") or "~/.cache/nas-shrink")).expanduser()
        self.cache_dir = cache_root / "embeddings"
        self._latent: latent.Latent | None = None
        self.encoder_file: Path | None = None
        self.supernet_cfgs = supernet_configs(cfg, self.space, self.evaluator)
        check_plan(self.plan, ("emit", *self.supernet_cfgs), self.loop.method)
        needs_images = self.supernet_cfgs or (getattr(self.evaluator, "dataset", None) is not None
                                              and not self.evaluator.reads_table)
        self.reads_images = bool(needs_images and self.dataset is not None)
        if self.reads_images:  # training or the supernet reads images: fail now, not later
            self.dataset.check()
        tracking = cfg.get("tracking") or {}
        self.stage_runs = bool(tracking.get("stage_runs", False))  # one nested MLflow run per stage, opt-in
        self.live: Callable[[dict[str, float]], None] | None = None  # set once the invocation's run is open
        self.history: list[dict[str, float]] = []
        self.reason = ""
        self.rerun_final = False  # set once a finished final stage runs again: the ones after it follow
        self.truth = ground_truth(cfg.get("ground_truth", "auto"), self.space, self.evaluator)
        self.seed = int(cfg.seed)
        self.executor = build_executor(cfg)
        self.constraints = build_constraints(cfg)
        check_constraints(self.evaluator, self.constraints, cache_root,
                          np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 0])))
        warn_unknown_costs(self.evaluator, self.constraints)
        self.region = self.stage_cfgs["pockets"].region if "pockets" in self.stage_cfgs else None
        if self.region is not None:  # fail before any evaluation, not at the first pockets stage
            pockets.check_region(self.space, self.constraints, self.region)
        # A surrogate-filled space improves with every score, so the last round is emitted and the
        # plateau is judged on the best archs found; member-only pockets keep the best round.
        self.objective = "top10_mean" if self.region == "surrogate" else "mean_pocket_score"
        self.choose = "last" if self.region == "surrogate" else self.plan.choose
        if self.truth and self.constraints.active:
            # Judge against what the budget allows: the best feasible arch is the optimum.
            self.truth = {a: v for a, v in self.truth.items()
                          if self.constraints.arch_violation(a, self.space, self.evaluator) is None}

    def stage(self, name: str, round_index: int, parent: str, cfg: Any = None) -> dict[str, float]:
        """Run (or reuse) one stage and record it on the invocation's run (and its own run with stage_runs)."""
        ctx, cfg, marker, settings = self.prepare(name, round_index, cfg)
        if self.stage_runs:
            run_name = name if name in FINAL_STAGES else f"r{round_index}/{name}"
            with self.tracker.run(run_name, parent, {"stage": name, "round": str(round_index)},
                                  reuse=marker.exists()) as run_id:
                metrics = self._run_stage(ctx, cfg, marker, settings)
                if not self.tracker.recorded(run_id):
                    self._log_stage_run(run_id, ctx, metrics, settings)
        else:
            metrics = self._run_stage(ctx, cfg, marker, settings)
        self.once(ctx.folder, parent, lambda: self._log_stage(parent, ctx, metrics))
        return metrics

    def prepare(self, name: str, round_index: int, cfg: Any = None,
                set_aside: bool = True) -> tuple[StageContext, Any, Path, dict[str, str]]:
        """Return a stage's context, config, done-marker path and settings.

        A finished final stage whose settings changed is set aside (``NAME.stale-K``) to run again,
        and the final stages after it follow; ``set_aside=False`` leaves that to another process.
        """
        final = name in FINAL_STAGES
        folder = self.run_dir / name if final else round_dir(self.run_dir, round_index) / name
        cfg = cfg if cfg is not None else self.stage_cfgs[name]
        marker = folder / "_done.json"
        settings = stage_settings(cfg)
        if set_aside and final and marker.exists() and (self.rerun_final or settings_changed(read_json(marker), settings, cfg)):
            self.rerun_final = True  # a later final stage read what this one made: it runs again too
            stale = move_aside(folder)
            print(f"{name}: its settings or inputs changed since it finished; running it again "
                  f"(previous files kept in {stale.name})", flush=True)
        ctx = StageContext(self.space, self.evaluator, stage_rng(self.seed, round_index, name),
                           self.run_dir, round_index, name, folder, self.loop.budget, self.truth, self.executor,
                           self.constraints, self.dataset, self.latent if name in LATENT_STAGES else None,
                           self.live)
        return ctx, cfg, marker, settings

    @staticmethod
    def _run_stage(ctx: StageContext, cfg: Any, marker: Path, settings: dict[str, str],
                   write: bool = True) -> dict[str, float]:
        """Return a finished stage's metrics from its marker, or run it and (when ``write``) write the marker."""
        if marker.exists():
            return marker_metrics(read_json(marker))
        metrics = STAGES[ctx.stage].run(ctx, cfg)
        if write:  # one writer per stage: under torchrun, rank 0
            missing = [a for a in STAGES[ctx.stage].MAKES if not (ctx.folder / ARTIFACTS[a].filename).exists()]
            if missing:  # a stage that breaks its contract must not be marked done
                raise StageContractError(f"stage {ctx.stage!r} finished without making {missing[0]!r} "
                                         f"({ARTIFACTS[missing[0]].filename}) in {ctx.folder}")
            write_json(marker, {"metrics": metrics, "settings": settings})
        return metrics

    def _log_stage_run(self, run_id: str, ctx: StageContext, metrics: dict[str, float], settings: dict[str, str]) -> None:
        """Fill a stage's own nested run (tracking.stage_runs): its settings, figures, curves and files."""
        self.tracker.params(run_id, settings)
        self.tracker.metrics(run_id, metrics, step=max(ctx.round, 0))
        self._log_series(run_id, ctx, "")
        self.tracker.artifacts(run_id, ctx.folder)

    def _log_stage(self, parent: str, ctx: StageContext, metrics: dict[str, float]) -> None:
        """Record a finished stage on the invocation's run: files and curves (unless it has its own run), figures."""
        if not self.stage_runs:
            self.tracker.artifacts(parent, ctx.folder, ctx.folder.relative_to(self.run_dir).as_posix())
            self._log_series(parent, ctx, f"{ctx.stage}/epoch/")
        if ctx.stage == "emit":
            self._log_result(parent, metrics)
        elif ctx.stage in FINAL_STAGES:
            self.tracker.metrics(parent, self.figures(ctx.stage, metrics))
        if ctx.stage == "search" and self.dataset is not None:
            saved = ctx.load_here("subnet")
            model_id = record.log_subnet(self.tracker, parent, self.space, saved, self.dataset.splits.val.x[:2])
            self.tracker.tags(parent, {"best_subnet.model_id": model_id, "best_subnet.arch": saved["arch"]})

    def _log_series(self, run_id: str, ctx: StageContext, prefix: str) -> None:
        """Log a stage's per-epoch rows (its SERIES artifact) as metrics with step = epoch."""
        series = getattr(STAGES[ctx.stage], "SERIES", None)
        for row in ctx.load_here(series) if series else []:
            self.tracker.metrics(run_id, {f"{prefix}{k}": v for k, v in row.items() if k != "epoch"},
                                 step=int(row["epoch"]))

    def _log_result(self, parent: str, final: dict[str, float]) -> None:
        """Log the emitted space's headline and other figures, mark the chosen round, describe the run.

        An emit that runs again on a resume logs only what changed: no doubled points in the series.
        """
        chosen = int(final["round"])
        latest = retry_locked(self.tracker.client.get_run, parent).data.metrics
        figures = self.figures("emit", final)
        self.tracker.metrics(parent, {k: v for k, v in figures.items() if latest.get(k) != v})
        marked = {m.step: m.value for m in retry_locked(self.tracker.client.get_metric_history, parent, "round/chosen")}
        for r in range(len(self.history)):
            if marked.get(r) != float(r == chosen):
                self.tracker.metrics(parent, {"round/chosen": float(r == chosen)}, step=r)
        self.tracker.tags(parent, {"result.round": str(chosen), "mlflow.note.content": record.describe(
            final, self.space.size(), self.space.name, self.spent, self.reason)})

    def figures(self, stage: str, metrics: dict[str, float]) -> dict[str, float]:
        """Return a final stage's figures under their run-level names (emit: result/ and space/; else stage/)."""
        if stage == "emit":
            return record.result_metrics(metrics, self.spent)
        return {f"{stage}/{k}": v for k, v in metrics.items()}

    def once(self, folder: Path, parent: str, log: Callable[[], None]) -> None:
        """Run ``log`` unless it already ran for ``parent`` (a resumed run logs nothing twice)."""
        marker = folder / "_logged.json"
        if marker.exists() and read_json(marker).get("run_id") == parent:
            return
        log()
        write_json(marker, {"run_id": parent})

    @property
    def spent(self) -> int:
        """Return the evaluations spent so far."""
        return int(self.history[-1]["evaluated_total"]) if self.history else 0

    def used_keys(self) -> set[str]:
        """Return the ``shrink.*`` / ``supernet.*`` keys that some stage of this run reads."""
        keys = {f"shrink.{f.name}" for f in fields(self.loop)} | {f"shrink.plan.{k}" for k in ("first", "later", "choose")}
        nodes = {n: c for n, c in self.stage_cfgs.items() if n != "evaluate"}
        nodes |= {"latent": self.latent_cfg} if self.latent_cfg.needs_encoder else {}
        keys |= {f"shrink.{n}.{f.name}" for n, c in nodes.items() for f in fields(c)}
        if "graph" in self.plan.first + self.plan.later:  # the method's locality choice, encoder or not
            keys |= {"shrink.latent.locality", "shrink.latent.features"}
        keys |= {f"supernet.{node}.{f.name}" for node, stage in SUPERNET_NODES.items() if stage in self.supernet_cfgs
                 for f in fields(self.supernet_cfgs[stage])}
        # Without images (a benchmark lookup) the dataset is only a name: its loading settings did nothing.
        return keys | ({f"dataset.{k}" for k in self.cfg.dataset} if self.reads_images else {"dataset.name"})

    @property
    def latent(self) -> latent.Latent | None:
        """Return the learned locality (the cached encoder, trained once per space and settings), None if unused."""
        if self._latent is None and self.latent_cfg.needs_encoder:
            self._latent, self.encoder_file = latent.build(self.space, self.latent_cfg, self.cache_dir)
        return self._latent

    def rounds(self, parent: str) -> tuple[list[dict[str, float]], str]:
        """Loop rounds until the stopping rule fires; return per-round metrics and the reason."""
        self.history = []
        self.reason = self._loop(parent, self.history)
        return self.history, self.reason

    def _loop(self, parent: str, history: list[dict[str, float]]) -> str:
        """Run rounds, appending each one's metrics to ``history``; return why the loop stopped."""
        best, stale = -math.inf, 0
        print(round_header(), flush=True)
        for r in range(self.loop.max_rounds):
            if r > 0 and not self.plan.later:
                return f"single round: method {self.loop.method} samples once"
            row = self._round(r, parent)
            if row is None:
                return "converged: every pocket member's neighbourhood is explored"
            judged = self.judge(r)
            row.update(judged)
            history.append(row)
            series = {f"round/{k}": v for k, v in {**{k: row[k] for k in ROUND_COLUMNS}, **judged}.items()}
            self.once(round_dir(self.run_dir, r), parent, partial(self.tracker.metrics, parent, series, step=r))
            print(round_row(r, row), flush=True)
            objective = row[self.objective]
            # Round 0 only samples; pockets grown from explored localities start at round 1.
            if self.plan.choose == "best" and r > 0 and not math.isnan(objective):
                best, stale = (objective, 0) if objective > best + self.loop.min_delta else (best, stale + 1)
            if stale >= self.loop.patience:
                what = "mean of the 10 best scores" if self.objective == "top10_mean" else "mean pocket score"
                return f"plateau: {what} did not improve for {stale} round(s)"
            if row.get("converged") == 1.0:
                return "converged: the restriction no longer changes or reached its target size"
            if row["evaluated_total"] >= self.loop.budget:
                return f"budget: {int(row['evaluated_total'])} evaluations spent"
        return f"max_rounds: {self.loop.max_rounds} rounds run"

    def judge(self, r: int) -> dict[str, float]:
        """Return structure and ground-truth metrics of round ``r``'s shrunk space."""
        data = read_json(next(round_dir(self.run_dir, r).glob("*/pockets.json")))
        members = list(dict.fromkeys(m["arch"] for p in data["pockets"] for m in p["members"]))
        scores = {m["arch"]: m["score"] for p in data["pockets"] for m in p["members"] if m["score"] is not None}
        metrics = space_metrics(self.space, members, len(data["pockets"]), scores, self.truth)
        return {k: v for k, v in metrics.items() if k not in ("size", "pockets")}

    def _round(self, r: int, parent: str) -> dict[str, float] | None:
        """Run one round's stages; None when exploration has nothing left to propose."""
        row: dict[str, float] = {}
        for name in self.plan.first if r == 0 else self.plan.later:
            metrics = self.stage(name, r, parent)
            if name == "explore" and metrics["proposed"] == 0:
                return None
            row.update(metrics)
        return row

