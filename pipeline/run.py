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
import math
import sys
import warnings
import zlib
from collections.abc import Callable, Iterable
from dataclasses import MISSING, asdict, dataclass, fields
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline import latent, record
from pipeline.artifacts import ARTIFACTS, read_json, write_json, write_rows
from pipeline.cli import closest
from pipeline.constraints import Constraints
from pipeline.context import StageContext, round_dir
from pipeline.errors import ConfigError
from pipeline.evaluators.base import Evaluator
from pipeline.evaluators.benchmark import read_table
from pipeline.executors import Executor, LocalExecutor
from pipeline.locks import exclusive
from pipeline.metrics import space_metrics
from pipeline.plan import FINAL_STAGES, LoopCfg, Plan, check_values, method_plans, read_plan  # noqa: F401 - re-exported
from pipeline.schema import stage_nodes
from pipeline.stages import emit, evaluate, explore, graph, pockets, refine, sample, search, select, supernet
from pipeline.tracking import Live, Tracker, flatten, retry_locked, system_metrics
from spaces.base import LatencySpace, SearchSpace

STAGES: dict[str, ModuleType] = {
    "sample": sample, "explore": explore, "evaluate": evaluate, "graph": graph,
    "pockets": pockets, "select": select, "refine": refine, "emit": emit, "supernet": supernet, "search": search,
}
LOCK_FILE = ".lock"  # held by the one process working in a run folder (pipeline/locks.py)
LATENT_STAGES = ("graph", "explore", "pockets")  # the stages that read the learned locality
ROUND_COLUMNS = ("evaluated", "evaluated_total", "pockets", "shrunk_size", "evaluated_members",
                 "mean_pocket_score", "best_pocket_score", "best_overall", "top10_mean")



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


class StageContractError(RuntimeError):
    """A stage finished without making an artifact its MAKES declares (a bug in the stage, not the input)."""


def check_plan(plan: Plan, finals: tuple[str, ...], method: str) -> None:
    """Refuse, before anything runs, a plan whose stage needs an artifact that no earlier stage makes."""
    made: set[str] = set()
    for where, names in (("round 0", plan.first), ("later rounds", plan.later), ("after the rounds", finals)):
        for name in names:
            missing = [a for a in STAGES[name].NEEDS if a not in made]
            if missing:
                raise ConfigError(f"method {method}, {where}: stage {name!r} needs {missing[0]!r}, which no earlier "
                                  f"stage makes (makers: {', '.join(n for n in STAGES if missing[0] in STAGES[n].MAKES)})")
            made |= set(STAGES[name].MAKES)


def stage_configs(shrink: dict[str, Any]) -> tuple[LoopCfg, Plan, dict[str, Any]]:
    """Split ``conf/shrink`` into the loop's config (its top-level keys) and each planned stage's (its node)."""
    method = shrink.get("method") or "lissnas"
    plan = read_plan(shrink.get("plan"), method)
    nodes = stage_nodes(plan.first + plan.later)
    top = {k: v for k, v in shrink.items() if k != "plan" and not isinstance(v, dict)}
    for key in sorted(set(_set(top)) - {f.name for f in fields(LoopCfg)}):
        raise ConfigError(_misplaced(key, shrink, nodes, method))
    for node in sorted(k for k, v in shrink.items() if isinstance(v, dict) and k != "plan" and k not in nodes):
        raise ConfigError(f"shrink.{node} is not a stage of method {method} (its stages with settings: "
                          f"{', '.join(nodes)}); drop it or choose the method that runs it")
    check_values(shrink)
    built = {n: stage_config(node_cfg(n), shrink.get(n) or {}, f"shrink.{n}") for n in nodes}
    return stage_config(LoopCfg, top, "shrink"), plan, built


def node_cfg(node: str) -> Any:
    """Return the config dataclass of ``shrink.<node>`` (a stage's ``Cfg``, or the locality's), None if no such node."""
    return latent.Cfg if node == "latent" else getattr(STAGES.get(node), "Cfg", None)


def _misplaced(key: str, shrink: dict[str, Any], nodes: list[str], method: str) -> str:
    """Explain a top-level ``shrink`` key that is not the loop's: a stage setting from before the per-stage nodes."""
    moved = _moved("shrink", key, shrink, nodes)
    if moved:
        return moved
    loop = [f.name for f in fields(LoopCfg)]
    return (f"shrink.{key} is not a setting of method {method}{closest(key, loop)} (its loop keys: {', '.join(loop)}; "
            f"its stages' sit in their nodes: {', '.join(f'shrink.{n}.*' for n in nodes)})")


def _moved(group: str, key: str, raw: dict[str, Any], nodes: Iterable[str]) -> str | None:
    """Name the stage nodes of ``group`` that hold ``key``, set flat on the group (the layout before the nodes)."""
    homes = [f"{group}.{n}.{key}" for n in nodes if isinstance(raw.get(n), dict) and key in raw[n]]
    return f"{group}.{key} has moved into its stage's node: write {' or '.join(homes)}" if homes else None


def _set(group: dict[str, Any]) -> dict[str, Any]:
    """Return a group's settings without the unset ones (null in the schema: the stage's own default)."""
    return {k: v for k, v in group.items() if v is not None}


def stage_config(cls: type, raw: dict[str, Any], path: str) -> Any:
    """Build one stage's config dataclass from its node ``path`` (e.g. shrink.pockets), naming a bad key or type."""
    raw = _set(raw)
    known = [f.name for f in fields(cls)]
    for key in sorted(set(raw) - set(known)):
        raise ConfigError(f"{path}.{key} is not a setting of {path}{closest(key, known)} (its keys: {', '.join(known)})")
    for f in fields(cls):
        if f.name in raw:
            _check_type(f"{path}.{f.name}", raw[f.name], str(f.type))
    try:
        return cls(**raw)
    except TypeError as err:
        raise ConfigError(f"{path}: {err}") from None


def _check_type(key: str, value: Any, annotation: str) -> None:
    """Reject a value whose type does not match the setting's annotation (bools are not numbers)."""
    expected = {"int": (int,), "float": (int, float), "str": (str,)}.get(annotation)
    if expected and (isinstance(value, bool) or not isinstance(value, expected)):
        raise ConfigError(f"{key}={value!r} must be of type {annotation}")


def build(cfg: DictConfig) -> tuple[SearchSpace, Evaluator, Any]:
    """Instantiate the space, evaluator and dataset, unwrapping Hydra's errors to the domain one."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        space = instantiate(cfg.space)
        dataset = instantiate(cfg.dataset)
        evaluator = instantiate(cfg.evaluator, space=space, dataset=dataset)
    except InstantiationException as err:
        cause = err.__cause__
        raise (cause if isinstance(cause, ValueError | RuntimeError) else ConfigError(str(err))) from None
    return space, evaluator, dataset


def supernet_configs(cfg: DictConfig, space: SearchSpace, evaluator: Evaluator) -> dict[str, Any]:
    """Return the supernet and search stage configs, or {} when no supernet is trained.

    ``supernet.enabled=auto`` trains one when the space has a supernet and the evaluator trains on
    the dataset (a benchmark lookup has no images to train on); ``true`` insists, ``false`` skips.
    """
    from pipeline.supernet.models import has_supernet

    raw = OmegaConf.to_container(cfg.supernet, resolve=True) if cfg.get("supernet") else {"enabled": False}
    enabled = raw.pop("enabled", None)
    enabled = "auto" if enabled is None else enabled
    if enabled not in (True, False, "auto"):
        raise ConfigError(f"supernet.enabled={enabled!r} must be true, false or auto")
    for key in sorted(set(_set(raw)) - set(SUPERNET_NODES)):
        raise ConfigError(_moved("supernet", key, raw, SUPERNET_NODES) or
                          f"supernet.{key} is not a setting of the supernet; its keys: enabled, train.*, search.*")
    offered = has_supernet(space)
    if enabled is True and not offered:
        raise ConfigError(f"supernet.enabled=true but space {space.name!r} has no supernet (nb201, mobilenet do)")
    if enabled is False or (enabled == "auto" and (not offered or evaluator.reads_table)):
        return {}
    from pipeline.threads import resolve_count

    built = {stage: stage_config(STAGES[stage].Cfg, raw.get(node) or {}, f"supernet.{node}")
             for node, stage in SUPERNET_NODES.items()}
    for node, stage in SUPERNET_NODES.items():  # refused now, not after the whole budget
        resolve_count(f"supernet.{node}.threads", built[stage].threads, 1)
    return built


SUPERNET_NODES = {"train": "supernet", "search": "search"}  # node of the supernet group -> the stage it configures


def build_executor(cfg: DictConfig) -> Executor:
    """Instantiate the executor group (local when the config has none)."""
    from hydra.utils import instantiate

    return instantiate(cfg.executor) if cfg.get("executor") else LocalExecutor()


def build_constraints(cfg: DictConfig) -> Constraints:
    """Return the resource budget (``constraints.max_flops`` / ``max_params`` / ``max_latency_ms`` + ``device``), checked."""
    raw = OmegaConf.to_container(cfg.constraints, resolve=True) if cfg.get("constraints") else {}
    known = ("max_flops", "max_params", "max_latency_ms", "device")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"constraints.{unknown[0]} is not a constraint; known: {', '.join(known)}")
    for key, value in raw.items():
        if key != "device" and value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                                      or value <= 0):
            raise ConfigError(f"constraints.{key}={value!r} must be a positive number or null")
    if (raw.get("max_latency_ms") is None) != (raw.get("device") is None):
        raise ConfigError("constraints.max_latency_ms and constraints.device go together: the latency budget in ms "
                          "and the device it is measured on (e.g. constraints.max_latency_ms=5 constraints.device=pixel3)")
    return Constraints(**raw)


MEASURABLE = ("cpu", "cuda")  # devices whose per-block latency table this machine can measure itself


def check_constraints(evaluator: Evaluator, constraints: Constraints, cache_dir: Path,
                      rng: np.random.Generator) -> None:
    """Refuse, before any evaluation, a budget the evaluator cannot price or that no arch of its table meets."""
    if not constraints.active:
        return
    if not evaluator.reads_table:
        if constraints.device is not None:
            measure_latency(evaluator, constraints.device, cache_dir)
            space = evaluator.space  # too large to count: estimate the feasible share from uniform samples
            costs = [evaluator.costs(space.sample(rng)) for _ in range(2000)]
            report_feasible(costs, constraints, "uniform samples", lambda bounds, shown: (
                f"none of {len(costs):,} uniform samples of {space.name} meets the constraints {bounds} "
                f"(the smallest costs seen: {shown}); loosen them"))
        return
    missing = [k for k in constraints.bounds() if k not in evaluator.columns]
    if missing:
        measured = ", ".join(evaluator.devices())
        hint = (f"devices measured there: {measured}" if missing[0].startswith("latency_") and measured else
                "it has no latency columns: convert with the latency file (python -m pipeline.convert_nb201 SOURCE ... "
                "--latency nb201_latency_ms.csv --out PATH)" if missing[0].startswith("latency_")
                else "rebuild or reconvert the table with costs")
        raise ConfigError(f"constraints.{constraints.name(missing[0])} needs column {missing[0]!r}, which "
                          f"{str(evaluator.path)!r} lacks; {hint}")
    report_feasible(list(evaluator.table.values()), constraints, "archs", lambda bounds, shown: (
        f"no arch of {str(evaluator.path)!r} meets the constraints {bounds} "
        f"(the smallest costs are {shown}); loosen them"))


def report_feasible(costs: list[dict[str, float]], constraints: Constraints, noun: str,
                    refusal: Callable[[dict[str, float], str], str]) -> None:
    """Print how many of ``costs`` (``noun``) fit the budget; when none does, refuse with ``refusal(bounds, smallest)``."""
    feasible = sum(constraints.violation(c) is None for c in costs)
    if not feasible:
        lowest = {k: min(c.get(k, math.inf) for c in costs) for k in constraints.bounds()}
        shown = ", ".join(f"{k} {v:,.4g}" for k, v in lowest.items())
        raise ConfigError(refusal(constraints.bounds(), shown))
    print(f"constraints: {feasible:,} of {len(costs):,} {noun} ({feasible / len(costs):.1%}) are feasible", flush=True)


def ground_truth(setting: str | None, space: SearchSpace, evaluator: Evaluator) -> dict[str, float] | None:
    """Return arch -> test accuracy used only to judge shrunk spaces (never searched on).

    ``auto`` takes the benchmark evaluator's own table, ``null`` disables it, and a path names a
    benchmark table for the evaluator's dataset (e.g. to judge a proxy- or training-driven run).
    """
    if setting is None or setting == "none":
        return None
    if setting == "auto":
        table = evaluator.table if evaluator.reads_table else None
    else:
        table = read_table(Path(setting).expanduser(), space, evaluator.tags().get("dataset", ""))
    if not table:
        return None
    truth = {arch: row["test_acc"] for arch, row in table.items() if math.isfinite(row["test_acc"])}
    if len(truth) < len(table):
        # NaN would turn regret and Kendall's tau into NaN; the archs without a result are not judged instead.
        warnings.warn(f"ground truth: {len(table) - len(truth):,} of {len(table):,} archs have a NaN or infinite "
                      "test_acc and are left out of every ground-truth metric", RuntimeWarning, stacklevel=2)
    if not truth:
        raise ConfigError(f"ground_truth={setting!r}: no arch has a finite test_acc; fix the table or set "
                          "ground_truth=null")
    if len(table) < space.size():  # a partial table (NaN rows were reported above)
        warnings.warn(f"ground truth covers {len(truth):,} of {space.size():,} archs: full-space statistics "
                      "are over the covered archs, and members outside it are not judged", stacklevel=2)
    return truth


def measure_latency(evaluator: Evaluator, device: str, cache_dir: Path) -> None:
    """Give the evaluator the space's per-block latency table on ``device``: measured once here, then cached."""
    space, dataset = evaluator.space, getattr(evaluator, "dataset", None)
    if device not in MEASURABLE or not isinstance(space, LatencySpace) or dataset is None:
        raise ConfigError(f"constraints.device={device!r}: without a benchmark table, latency is measured on this "
                          f"machine ({', '.join(MEASURABLE)}) for a space with a latency hook (mobilenet); otherwise "
                          "use evaluator=benchmark with a table that has latency_<device> columns")
    if device == "cuda" and not __import__("torch").cuda.is_available():
        raise ConfigError("constraints.device=cuda: no CUDA device here; use constraints.device=cpu")
    shape = dataset.splits.input_shape
    path = cache_dir / "latency" / f"{space.name}-{'x'.join(map(str, shape))}-{space.config().get('width_mult', 1)}-{device}.csv"
    if path.is_file():
        table = space.load_latency_table(path)
    else:
        print(f"constraints: measuring {space.name}'s block latencies on {device} (once; cached in {path})", flush=True)
        from pipeline.threads import torch_threads

        with torch_threads(1):  # the evaluations' thread count: a second thread only adds noise under load
            table = space.measure_latency_table(shape, dataset.splits.num_classes, device)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.save(path)
    evaluator.latency = (device, table)


def warn_unknown_costs(evaluator: Evaluator, constraints: Constraints) -> None:
    """Warn, before any evaluation, when a budget meets table rows whose cost is unknown (they count as over it)."""
    if not (constraints.active and evaluator.reads_table):
        return
    keys = tuple(k for k in constraints.bounds() if k in evaluator.columns)
    unknown = evaluator.unknown_costs(keys) if keys else 0
    if unknown:
        warnings.warn(f"{unknown:,} of {len(evaluator.table):,} archs in {str(evaluator.path)!r} have no finite "
                      f"{' or '.join(keys)}: they count as over the budget and never enter a pocket",
                      RuntimeWarning, stacklevel=2)


def resolve_resume(value: str, uri: str, experiment: str) -> Path:
    """Return the run directory named by ``resume=``: a folder, or an MLflow run id of a pipeline run."""
    path = Path(value)
    if (path / "run.json").exists():
        return path
    if path.exists():
        raise ConfigError(f"resume={value!r} is not a run directory (no run.json); pass the folder a run printed")
    try:
        run_dir = Tracker(uri, experiment).client.get_run(value).data.tags.get("run_dir")
    except Exception:  # MLflow raises several types for an unknown id
        run_dir = None
    if not run_dir or not (Path(run_dir) / "run.json").exists():
        raise ConfigError(f"resume={value!r} is neither a run directory nor the MLflow run id of a pipeline run "
                          f"in {uri} whose folder still exists")
    return Path(run_dir)


def stage_rng(seed: int, round_index: int, stage: str) -> np.random.Generator:
    """Derive the rng of one stage of one round from the top-level seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, round_index + 1, zlib.crc32(stage.encode())]))


def _manifest_config(cfg: DictConfig) -> dict[str, Any]:
    """Return the config parts that determine results (what a resumed run must match)."""
    keep = ("seed", "space", "dataset", "evaluator", "shrink", "constraints")
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if k != "seed" else cfg[k] for k in keep if k in cfg}


def prepare_run_dir(run_dir: Path, cfg: DictConfig) -> None:
    """Create the run folder or, when it exists, check it was made by the same config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = run_dir / "run.json"
    current = _defaults_filled(flatten(_manifest_config(cfg)))
    if manifest.exists():
        # A setting added later (absent from an older manifest) that is null now, or the default the stage
        # used before the key was listed in its YAML, changes nothing.
        recorded = {**{k: v for k, v in current.items() if v in ("None", _stage_default(k))},
                    **_defaults_filled(_migrated(flatten(read_json(manifest)["config"]), current))}
        diff = sorted(k for k in current.keys() | recorded.keys() if current.get(k) != recorded.get(k))
        if diff:
            shown = "; ".join(f"{k}={recorded.get(k, '(unset)')}, not {current.get(k, '(unset)')}" for k in diff[:3])
            more = f" (and {len(diff) - 3} more keys)" if len(diff) > 3 else ""
            raise ConfigError(
                f"resume: {run_dir} was made with {shown}{more}; drop those overrides to continue it "
                "(resume=DIR alone reuses its settings), or start a new run without resume="
            )
    else:
        write_json(manifest, {"config": _manifest_config(cfg)})


def _stage_default(key: str) -> str | None:
    """Return, as manifest text, the stage dataclass's own default of ``shrink.<node>.<field>`` (None if none)."""
    group, node, name = ([*key.split("."), "", ""])[:3]
    owner = node_cfg(node)
    if group != "shrink" or owner is None:
        return None
    found = next((f for f in fields(owner) if f.name == name), None)
    return str(found.default) if found is not None and found.default is not MISSING else None


def _defaults_filled(flat: dict[str, Any]) -> dict[str, Any]:
    """Return a flat manifest with each unset (None) stage key as the default its stage then used."""
    return {k: _stage_default(k) or v if v == "None" else v for k, v in flat.items()}


def _migrated(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Return a manifest of before the per-stage nodes (``shrink.radius``) with its keys in their stage nodes."""
    out = {}
    for key, value in recorded.items():
        group, _, leaf = key.partition(".")
        homes = [] if key in current or "." in leaf else [
            k for k in current if k.startswith(f"{group}.") and k.count(".") == 2 and k.endswith(f".{leaf}")]
        out.update(dict.fromkeys(homes or [key], value))
    return out


class Runner:
    """Runs the stages of one invocation, logging each as a nested MLflow run."""

    def __init__(self, cfg: DictConfig, run_dir: Path, tracker: Tracker, progress: bool = True) -> None:
        self.cfg, self.run_dir, self.tracker = cfg, run_dir, tracker
        shrink = OmegaConf.to_container(cfg.shrink, resolve=True)
        self.loop, self.plan, self.stage_cfgs = stage_configs(shrink)
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
                          if self.constraints.violation(self.evaluator.costs(self.space.from_str(a))) is None}

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
        if set_aside and final and marker.exists() and (self.rerun_final or _changed(read_json(marker), settings)):
            self.rerun_final = True  # a later final stage read what this one made: it runs again too
            stale = _set_aside(folder)
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
            return _marker_metrics(read_json(marker))
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
        print(_header(), flush=True)
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
            print(_row(r, row), flush=True)
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


def stage_settings(cfg: Any) -> dict[str, str]:
    """Return the settings that decide a stage's output (not its progress bar, not the run's provenance)."""
    return {k: v for k, v in flatten(asdict(cfg)).items() if k != "progress" and not k.startswith("provenance")}


def _marker_metrics(marker: dict[str, Any]) -> dict[str, float]:
    """Return a finished stage's metrics; null (how strict JSON keeps NaN) reads back as NaN."""
    return {k: float("nan") if v is None else v for k, v in marker["metrics"].items()}


def _changed(marker: dict[str, Any], settings: dict[str, str]) -> bool:
    """Whether a finished stage was made with other settings (markers from before settings were kept: no)."""
    return "settings" in marker and marker["settings"] != settings


def _set_aside(folder: Path) -> Path:
    """Rename a finished stage's folder to the first free ``NAME.stale-K`` and return the new path."""
    k = 1
    while folder.with_name(f"{folder.name}.stale-{k}").exists():
        k += 1
    return folder.rename(folder.with_name(f"{folder.name}.stale-{k}"))


def _header() -> str:
    """Return the per-round table header (what each column counts is in ROUND_LEGEND)."""
    return ("round  evals  evals_total  pockets  space_size  space_evaluated  mean_evaluated_member  "
            "best_evaluated_member  best_overall\n" + ROUND_LEGEND)


ROUND_LEGEND = ("  (evals: archs evaluated this round; space_size: archs in this round's shrunk space, "
                "of which space_evaluated have a score; scores are the search metric)")


def _row(r: int, row: dict[str, float]) -> str:
    """Return one line of the per-round table."""
    return (f"{r:>5} {int(row['evaluated']):>6} {int(row['evaluated_total']):>12} {int(row['pockets']):>8} "
            f"{int(row['shrunk_size']):>11} {int(row.get('evaluated_members', row['shrunk_size'])):>16} "
            f"{row['mean_pocket_score']:>22.3f} {row['best_pocket_score']:>22.3f} {row['best_overall']:>13.3f}")


def summary_lines(final: dict[str, float], space: SearchSpace, rounds: int, spent: int, budget: int,
                  unevaluated: str = "predicted") -> list[str]:
    """Return the end-of-run lines: what was emitted and what the budget bought."""
    size = int(final["shrunk_size"])
    evaluated = int(final.get("evaluated_members", size))
    return [f"emitted: round {int(final['round'])} of rounds 0-{rounds - 1}; {size:,} archs = {size / space.size():.3%} "
            f"of {space.name} ({space.size():,}); {int(final['pockets'])} pockets; "
            f"{evaluated:,} evaluated + {size - evaluated:,} {unevaluated} members",
            f"evaluations: {spent:,} spent of budget {budget:,}", *verdict_lines(final)]


def verdict_lines(final: dict[str, float]) -> list[str]:
    """Return the ground truth's verdict on the emitted space (none without ground truth): quality, regret, recall."""
    if "gt_mean" not in final:
        return []
    line = (f"verdict (ground truth, test accuracy): emitted space mean {final['gt_mean']:.2f}, best "
            f"{final['gt_best']:.2f} (regret {final['regret']:.2f})")
    if "recall_top0.1pct" in final:
        line += (f"; holds {final['recall_top0.1pct']:.0%} of the space's top 0.1% and "
                 f"{final.get('recall_top1pct', math.nan):.0%} of its top 1%")
    compared = [f"{name} mean {final[key]:.2f}" for key, name in (("sample_mean_test_acc", "round-0 uniform sample"),
                                                                   ("gt_full_mean", "whole space")) if key in final]
    return [line, "  vs " + "; ".join(compared)] if compared else [line]


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
                  "config": _manifest_config(cfg), "stop_reason": reason, "evaluations": int(runner.spent)}
    last = len(history) - 1 if history else 0
    final = runner.stage("emit", last, parent, emit.Cfg(provenance, runner.choose))
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
    setting = cfg.tracking.get("system_metrics", "auto")
    if setting not in (True, False, "auto"):
        raise ConfigError(f"tracking.system_metrics={setting!r} must be true, false or auto")
    trains = bool(runner.supernet_cfgs) or runner.evaluator.name == "train"
    return trains if setting == "auto" else bool(setting)


PARENT_FILE = "mlflow_run.json"  # the run folder's MLflow parent run, which a resume continues


def _recorded_parent(run_dir: Path, uri: str) -> str | None:
    """Return the MLflow run an earlier process of this folder opened in the store ``uri``, if any."""
    path = run_dir / PARENT_FILE
    recorded = read_json(path) if path.exists() else {}
    return recorded.get("run_id") if recorded.get("tracking_uri") == uri else None


def _run(cfg: DictConfig, run_dir: Path, hydra_dir: Path | None, sweep_parent: str | None, tracker: Tracker,
         runner: Runner, tags: dict[str, str], name: str) -> RunResult:
    """Open the invocation's run, loop the rounds, emit, train the supernet, and upload the run's files."""
    with tracker.run(name, sweep_parent, tags, resume_id=_recorded_parent(run_dir, cfg.tracking.uri)) as parent:
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
