"""Building a run's objects from its config: stage configs by node, space / evaluator / dataset, executor,
constraints (checked before any evaluation), ground truth."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.cli import closest
from pipeline.config.groups import ConstraintsCfg, LoopCfg
from pipeline.config.knobs import check
from pipeline.constraints import Constraints
from pipeline.errors import ConfigError
from pipeline.evaluators.base import Evaluator
from pipeline.evaluators.benchmark import read_table
from pipeline.executors import Executor, LocalExecutor
from pipeline.plan import Plan, read_plan
from pipeline.schema import SUPERNET_NODES, check_values, linked, method_schema, stage_nodes, supernet_schema
from pipeline.stages import emit, evaluate, explore, graph, pockets, refine, sample, search, select, supernet
from spaces.base import LatencySpace, SearchSpace

STAGES: dict[str, ModuleType] = {
    "sample": sample, "explore": explore, "evaluate": evaluate, "graph": graph,
    "pockets": pockets, "select": select, "refine": refine, "emit": emit, "supernet": supernet, "search": search,
}


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


def stage_configs(node: Any) -> tuple[LoopCfg, Plan, dict[str, Any]]:
    """Split the ``shrink`` group into the loop's config (its top, a ``LoopCfg``) and each planned stage's (its node).

    ``node`` is the composed group (or a plain dict); it is laid over its method's schema, so a method
    file that does not name its schema still gets every default and type, and the objects come from
    ``OmegaConf.to_object``: each stage's own config class, no copies.
    """
    shrink = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    method = shrink.get("method") or "lissnas"
    if not isinstance(method, str):
        raise ConfigError(f"shrink.method={method!r} must be a method's name (a file of conf/shrink), e.g. lissnas")
    plan = read_plan(shrink.get("plan"), method)
    nodes = stage_nodes(plan.first + plan.later)
    top = {k: v for k, v in shrink.items() if k != "plan" and not isinstance(v, dict)}
    for key in sorted(set(_set(top)) - {f.name for f in fields(LoopCfg)}):
        raise ConfigError(_misplaced(key, shrink, nodes, method))
    for name in sorted(k for k, v in shrink.items() if isinstance(v, dict) and k != "plan" and k not in nodes):
        raise ConfigError(f"shrink.{name} is not a stage of method {method} (its stages with settings: "
                          f"{', '.join(nodes)}); drop it or choose the method that runs it")
    check_values(shrink)
    loop = typed(linked(method_schema(method, plan)), node, "shrink")
    return loop, plan, {n: getattr(loop, n) for n in nodes}


def typed(schema: Any, node: Any, path: str) -> Any:
    """Return ``node`` laid over the config node ``schema`` as objects of its config classes, naming a bad key or type."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        # Plain values, not the node itself: a node pickled to another process (joblib, torchrun) carries
        # a copy of its generated schema class, which OmegaConf would refuse to merge into this one.
        plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        return OmegaConf.to_object(OmegaConf.merge(schema, plain))
    except OmegaConfBaseException as err:
        key = f"{path}.{err.full_key}" if getattr(err, "full_key", None) else path
        raise ConfigError(f"{key}: {str(err).splitlines()[0]}") from None


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
    """Return a group's settings without the unset ones (null)."""
    return {k: v for k, v in group.items() if v is not None}


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
    for key in sorted(set(_set(raw)) - {"enabled", *SUPERNET_NODES}):
        raise ConfigError(_moved("supernet", key, raw, SUPERNET_NODES) or
                          f"supernet.{key} is not a setting of the supernet; its keys: enabled, train.*, search.*")
    check(supernet_schema(), raw, "supernet")
    enabled = raw.get("enabled", "auto")
    offered = has_supernet(space)
    if enabled is True and not offered:
        raise ConfigError(f"supernet.enabled=true but space {space.name!r} has no supernet (nb201, mobilenet do)")
    if enabled is False or (enabled == "auto" and (not offered or evaluator.reads_table)):
        return {}
    from pipeline.threads import resolve_count

    node = typed(linked(supernet_schema()), cfg.supernet, "supernet")
    built = {stage: getattr(node, key) for key, stage in SUPERNET_NODES.items()}
    for key, stage in SUPERNET_NODES.items():  # refused now, not after the whole budget
        resolve_count(f"supernet.{key}.threads", built[stage].threads, 1)
    return built


def build_executor(cfg: DictConfig) -> Executor:
    """Instantiate the executor group (local when the config has none)."""
    from hydra.utils import instantiate

    return instantiate(cfg.executor) if cfg.get("executor") else LocalExecutor()


def build_constraints(cfg: DictConfig) -> Constraints:
    """Return the resource budget (``constraints.max_flops`` / ``max_params`` / ``max_latency_ms`` + ``device``), checked."""
    raw = OmegaConf.to_container(cfg.constraints, resolve=True) if cfg.get("constraints") else {}
    known = [f.name for f in fields(ConstraintsCfg)]
    for key in sorted(set(raw) - set(known)):
        raise ConfigError(f"constraints.{key} is not a constraint{closest(key, known)}; known: {', '.join(known)}")
    check(ConstraintsCfg, raw, "constraints")
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

