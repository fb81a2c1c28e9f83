"""Typed schemas of the config groups, registered with Hydra's ConfigStore (structured configs).

Each ``conf/shrink/<method>.yaml`` and ``conf/supernet/spos.yaml`` names its schema first in its
defaults list, so composition itself refuses a wrong type (``shrink.budget=abc``), a misspelt key
and a key foreign to the chosen method (``shrink=topk shrink.pockets.radius=2``), each with its full
key path, before anything is built. The groups are nested: the loop's knobs on top, then one node
per stage, holding that stage's config dataclass (``shrink.pockets.radius``,
``supernet.train.epochs``, ``supernet.search.calib_batch``). A method's schema is generated from
the stages its plan (``shrink.plan`` in its YAML) runs, so a stage's new knob is typed where it is
declared (``pipeline/config/stages.py``, a light module: the schemas are built on every command line
before Hydra composes, error paths included). Every leaf is optional in the schema (null = the
stage's own default); required ones are enforced when the stage config is built
(``pipeline/build.py: stage_config``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

SIMPLE = {"int": int, "float": float, "str": str, "bool": bool}  # the types OmegaConf checks; others are Any


def schema(name: str, owners: Sequence[type]) -> type:
    """Return a dataclass holding every field of ``owners`` (first owner wins a shared name), all defaulting to None."""
    fields = _fields(owners)
    return dataclasses.make_dataclass(name, [(k, t, dataclasses.field(default=None)) for k, t in fields.items()])


def stage_cfg(stage: str) -> type:
    """Return the config dataclass of stage ``stage`` (pipeline/config/stages.py: light, no heavy imports)."""
    from pipeline.config import stages

    return getattr(stages, STAGE_CLASSES.get(stage, f"{stage.title()}Cfg"))


STAGE_CLASSES = {"search": "SubnetSearchCfg"}  # stages whose class name is not <Stage>Cfg


def stage_nodes(method_stages: Sequence[str]) -> list[str]:
    """Return the config nodes of a method's ``shrink`` group: its stages that have knobs, and ``latent`` with a graph."""
    stages = sorted(set(method_stages) - {"evaluate"})  # evaluate's only knob (progress) is top-level
    return stages + (["latent"] if "graph" in stages else [])


def node_owner(node: str) -> type:
    """Return the config dataclass of ``shrink.<node>``."""
    return stage_cfg(node)


def nested(name: str, top: Sequence[type], nodes: dict[str, type],
           extra: dict[str, Any] | None = None) -> type:
    """Return a schema with the fields of ``top`` at its top and one sub-schema per entry of ``nodes``."""
    subs = {key: schema(f"{name}{key.title()}", [owner]) for key, owner in nodes.items()}
    fields = {**{k: (t, dataclasses.field(default=None)) for k, t in _fields(top).items()},
              **{k: (sub, dataclasses.field(default_factory=sub)) for k, sub in subs.items()}}
    fields.update({k: (t, dataclasses.field(default=None)) for k, t in (extra or {}).items()})
    return dataclasses.make_dataclass(name, [(k, t, f) for k, (t, f) in fields.items()])


def _fields(owners: Sequence[type]) -> dict[str, Any]:
    """Return name -> schema type of every field of the dataclasses ``owners`` (first owner wins a shared name)."""
    out: dict[str, Any] = {}
    for owner in owners:
        for f in dataclasses.fields(owner):
            annotation = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            out.setdefault(f.name, Optional[SIMPLE[annotation]] if annotation in SIMPLE else Any)  # noqa: UP045
    return out


def shrink_schemas(plans: dict[str, Any] | None = None) -> dict[str, type]:
    """Return method -> schema of its ``shrink`` group: the loop's knobs on top, one node per stage with knobs."""
    from pipeline.plan import LoopCfg, method_plans

    out = {}
    for method, plan in (method_plans() if plans is None else plans).items():
        nodes = {node: node_owner(node) for node in stage_nodes(plan.first + plan.later)}
        out[method] = nested(f"{method.title().replace('_', '')}Shrink", [LoopCfg], nodes,
                             {"plan": Optional[PlanSchema]})  # noqa: UP045
    return out


def supernet_schema() -> type:
    """Return the schema of ``conf/supernet/spos.yaml``: ``enabled``, then the ``train`` and ``search`` stages' nodes."""
    return nested("SposSupernet", [], {"train": stage_cfg("supernet"), "search": stage_cfg("search")}, {"enabled": Any})


@dataclasses.dataclass
class PlanSchema:
    """Schema of ``shrink.plan``: the stages of round 0 and of later rounds, and which round is emitted."""

    first: list[str] = dataclasses.field(default_factory=list)
    later: list[str] = dataclasses.field(default_factory=list)
    choose: str = "best"


@dataclasses.dataclass
class TrackingSchema:
    """Schema of the ``tracking`` group."""

    uri: str = "sqlite:///mlflow.db"
    experiment: str = "nas-shrink"
    run_name: Optional[str] = None  # noqa: UP045
    stage_runs: bool = False
    system_metrics: Any = "auto"  # true, false or auto
    progress_every_s: float = 5.0


REGISTERED: set[str] = set()  # "": the shipped schemas are stored; a folder: its --config-dir methods are


def register(config_dir: str | Path | None = None) -> None:
    """Register every schema with Hydra's ConfigStore, and those of the methods in ``config_dir`` (once each)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if "" not in REGISTERED:
        for method, node in shrink_schemas().items():
            store.store(group="schema/shrink", name=method, node=node)
        store.store(group="schema/supernet", name="spos", node=supernet_schema())
        store.store(group="schema/tracking", name="default", node=TrackingSchema)
        REGISTERED.add("")
    if config_dir and str(Path(config_dir).resolve()) not in REGISTERED:
        from pipeline.plan import user_plans

        for method, node in shrink_schemas(user_plans(config_dir)).items():  # a user's method: /schema/shrink/<name>
            store.store(group="schema/shrink", name=method, node=node)
        REGISTERED.add(str(Path(config_dir).resolve()))
