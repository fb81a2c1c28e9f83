"""Typed schemas of the config groups, registered with Hydra's ConfigStore (structured configs), built from
the config classes of ``pipeline/config/`` (where each knob is declared once, with its default and rule).

Each ``conf/shrink/<method>.yaml`` and ``conf/supernet/spos.yaml`` names its schema first in its
defaults list, so composition itself supplies every default and refuses a wrong type
(``shrink.budget=abc``), a misspelt key and a key foreign to the chosen method (``shrink=topk
shrink.pockets.radius=2``), each with its full key path, before anything is built. The groups are
nested: the loop's knobs on top, then one node per stage, holding that stage's config class
(``shrink.pockets.radius``, ``supernet.train.epochs``). A method's schema is generated from the stages
its plan (``shrink.plan`` in its YAML) runs. A field that ``follows`` another node's key becomes an
interpolation of it (``shrink.explore.radius: ${..pockets.radius}``) where the method has that node.
``stage/<stage>`` is an empty node, so a method YAML of before that lists its stages
(``- /stage/pockets@pockets``) still composes; its defaults come from the schema alone.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from pipeline.config import groups, stages
from pipeline.config.knobs import OneOf, check, follows, knob
from pipeline.errors import ConfigError
from pipeline.plan import Plan, method_plans, read_plan, user_plans

STAGE_CLASSES: dict[str, type] = {
    "sample": stages.SampleCfg, "evaluate": stages.EvaluateCfg, "explore": stages.ExploreCfg, "graph": stages.GraphCfg,
    "pockets": stages.PocketsCfg, "select": stages.SelectCfg, "refine": stages.RefineCfg, "emit": stages.EmitCfg,
    "supernet": stages.SupernetCfg, "search": stages.SubnetSearchCfg, "latent": stages.LatentCfg,
}  # stage (or node) -> its config class; each stage module names the same class as its ``Cfg``
SUPERNET_NODES = {"train": "supernet", "search": "search"}  # node of the supernet group -> the stage it configures


def stage_cfg(stage: str) -> type:
    """Return the config class of stage ``stage`` (or of the ``latent`` node)."""
    return STAGE_CLASSES[stage]


def stage_nodes(method_stages: Sequence[str]) -> list[str]:
    """Return the config nodes of a method's ``shrink`` group: its stages that have knobs, and ``latent`` with a graph."""
    nodes = sorted(set(method_stages) - {"evaluate"})  # evaluate's only knob (progress) is top-level
    return nodes + (["latent"] if "graph" in nodes else [])


def nested(name: str, top: type | None, nodes: dict[str, type], overrides: dict[str, Any] | None = None,
           extra: Sequence[tuple[str, Any, Any]] = ()) -> type:
    """Return a subclass of ``top`` (defaults set by ``overrides``) with the fields ``extra`` and a node per ``nodes``."""
    out = []
    if top is not None:  # a re-declared field keeps its place and rule, with the new default
        hints = typing.get_type_hints(top)
        out += [(f.name, hints[f.name], dataclasses.field(default=value, metadata=f.metadata))
                for f in dataclasses.fields(top) for key, value in (overrides or {}).items() if f.name == key]
    out += list(extra)
    out += [(key, cls, dataclasses.field(default_factory=cls)) for key, cls in nodes.items()]
    return dataclasses.make_dataclass(name, out, bases=(top,) if top is not None else ())


def linked(schema: type) -> Any:
    """Return ``schema`` as a config node whose ``follows`` fields interpolate the node they follow, where present."""
    from omegaconf import OmegaConf

    node = OmegaConf.structured(schema)
    for f in dataclasses.fields(schema):
        inner = f.default_factory if isinstance(f.default_factory, type) else None
        for g in dataclasses.fields(inner) if inner is not None and dataclasses.is_dataclass(inner) else ():
            target = follows(g)
            if target and target.partition(".")[0] in node:
                node[f.name][g.name] = "${.." + target + "}"
    return node


@functools.cache  # one class per method and plan, built once (the CLI and the runner ask for it again)
def method_schema(method: str, plan: Plan) -> type:
    """Return the schema of a method's ``shrink`` group: the loop's knobs on top, the plan, one node per stage with knobs."""
    nodes = {node: stage_cfg(node) for node in stage_nodes(plan.first + plan.later)}
    return nested(f"{method.title().replace('_', '')}Shrink", groups.LoopCfg, nodes, {"method": method},
                  [("plan", groups.PlanCfg, dataclasses.field(default_factory=groups.PlanCfg))])


def shrink_schemas(plans: dict[str, Plan] | None = None) -> dict[str, type]:
    """Return method -> schema of its ``shrink`` group, for the shipped methods or those of ``plans``."""
    return {method: method_schema(method, plan) for method, plan in (method_plans() if plans is None else plans).items()}


ENABLED = OneOf((True, False, "auto"))  # supernet.enabled: auto = when the space has a supernet and the evaluator trains


@functools.cache
def supernet_schema() -> type:
    """Return the schema of ``conf/supernet/spos.yaml``: ``enabled``, then the ``train`` and ``search`` stages' nodes."""
    return nested("SposSupernet", None, {node: stage_cfg(stage) for node, stage in SUPERNET_NODES.items()},
                  extra=[("enabled", Any, knob("auto", ENABLED))])


def from_signature(cls: type) -> type:
    """Return a schema whose fields are ``cls``'s constructor arguments with their defaults, and its ``_target_``.

    For a group built by ``_target_`` (the executors) the constructor is the one declaration of its knobs.
    """
    import inspect

    hints = typing.get_type_hints(cls.__init__)
    out: list[tuple[str, Any, Any]] = [("_target_", str, dataclasses.field(default=f"{cls.__module__}.{cls.__name__}"))]
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name != "self":
            kind = hints.get(name, Any)
            out.append((name, kind if kind in (int, float, str, bool) else Any, dataclasses.field(default=param.default)))
    return dataclasses.make_dataclass(f"{cls.__name__}Config", out)


EXECUTORS = {"local": "LocalExecutor", "ray": "RayExecutor"}  # executor option -> class of pipeline/executors.py
REGISTERED: set[str] = set()  # "": the shipped schemas are stored; a folder: its --config-dir methods are


def register(config_dir: str | Path | None = None) -> None:
    """Register every schema with Hydra's ConfigStore, and those of the methods in ``config_dir`` (once each)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if "" not in REGISTERED:
        for method, schema in shrink_schemas().items():
            store.store(group="schema/shrink", name=method, node=linked(schema))
        store.store(group="schema/supernet", name="spos", node=linked(supernet_schema()))
        store.store(group="schema/tracking", name="default", node=groups.TrackingCfg)
        store.store(group="schema/constraints", name="default", node=groups.ConstraintsCfg)
        store.store(group="schema/search", name="default", node=groups.SearchCfg)
        store.store(group="schema/bench", name="default", node=groups.BenchCfg)
        from pipeline import executors  # light (no torch): its constructors declare the executor knobs

        for option, name in EXECUTORS.items():
            store.store(group="executor", name=option, node=from_signature(getattr(executors, name)))
        for stage in STAGE_CLASSES:  # a method file of before lists `- /stage/<stage>@<stage>`: its node is the schema's
            store.store(group="stage", name=stage, node={})
        REGISTERED.add("")
    if config_dir and str(Path(config_dir).resolve()) not in REGISTERED:
        for method, schema in shrink_schemas(user_plans(config_dir)).items():  # a user's method: /schema/shrink/<name>
            store.store(group="schema/shrink", name=method, node=linked(schema))
        REGISTERED.add(str(Path(config_dir).resolve()))


# The selection rule each baseline's select / refine stage runs.
RULES = {"random": "random", "topk": "top", "op_pruning": "op_pruning", "regnet": "regnet"}


def check_values(shrink: dict[str, Any], references: Collection[str] = ()) -> None:
    """Refuse, by full key, a ``shrink`` value out of range or another method's rule (no stage import needed).

    ``references``: leaves (``explore.radius``) whose value interpolates another key; the value is
    checked, and named, at the key it comes from.
    """
    check_rule(shrink.get("method") or "lissnas", shrink)
    check_ranges(shrink, references)


def interpolated(raw: dict[str, Any], path: str = "") -> set[str]:
    """Return the leaves (``explore.radius``) of an unresolved group whose value interpolates another key."""
    out = set()
    for key, value in raw.items():
        if isinstance(value, dict):
            out |= interpolated(value, f"{path}{key}.")
        elif isinstance(value, str) and value.startswith("${"):
            out.add(f"{path}{key}")
    return out


def check_rule(method: str, shrink: dict[str, Any]) -> None:
    """Refuse another method's selection rule, which would run under this method's name."""
    node = next((n for n in ("select", "refine") if isinstance(shrink.get(n), dict)), None)
    rule = (shrink[node].get("rule") if node else None) or RULES.get(method)
    if method in RULES and rule != RULES[method]:
        other = next((m for m, r in RULES.items() if r == rule), None)
        fix = f"run that method with shrink={other}" if other else f"drop it or set shrink.{node}.rule={RULES[method]}"
        raise ConfigError(f"shrink.{node}.rule={rule!r} is not the rule of method {method} ({RULES[method]}); {fix}")


def check_ranges(shrink: dict[str, Any], skip: Collection[str] = ()) -> None:
    """Reject values outside their meaningful range (each field's declared rule), naming the full key."""
    method = shrink.get("method") or "lissnas"
    plan = read_plan(shrink.get("plan"), method)
    check(method_schema(method, plan), shrink, "shrink", skip)
    check_budget_leaves_rounds(shrink)
    if method == "lissnas":
        check_pockets_can_grow(shrink.get("pockets") or {}, int(shrink.get("budget") or 1))


def check_budget_leaves_rounds(shrink: dict[str, Any]) -> None:
    """Refuse an initial sample that spends the whole budget of a method whose later rounds grow its space.

    Only a method that explores after round 0 (lissnas) depends on later rounds: a refining method
    (op_pruning, regnet) already restricts the space in round 0, and a smaller budget just samples less.
    """
    explores = "explore" in ((shrink.get("plan") or {}).get("later") or [])
    n_samples, budget = (shrink.get("sample") or {}).get("n_samples"), shrink.get("budget")
    if explores and isinstance(n_samples, int) and isinstance(budget, int) and n_samples >= budget:
        raise ConfigError(f"shrink.sample.n_samples={n_samples} spends all of shrink.budget={budget} in round 0, "
                          f"leaving nothing for the later rounds of shrink={shrink.get('method') or 'lissnas'}; "
                          f"lower shrink.sample.n_samples or raise shrink.budget")


def check_pockets_can_grow(pockets: dict[str, Any], budget: int) -> None:
    """Refuse pocket settings no run can satisfy, so the refusal comes before the budget is spent."""
    min_size = int(pockets.get("min_pocket_size") or 2)
    if pockets.get("radius", 1) == 0 and min_size > 1:
        raise ConfigError(f"shrink.pockets.radius=0 leaves every pocket its seed alone, below "
                          f"shrink.pockets.min_pocket_size={min_size}; use radius >= 1 or min_pocket_size=1")
    if min_size > budget:
        raise ConfigError(f"shrink.pockets.min_pocket_size={min_size} exceeds shrink.budget={budget}: a pocket holds "
                          "evaluated archs, so none could ever be kept; lower min_pocket_size")
