"""Typed schemas of the config groups, registered with Hydra's ConfigStore (structured configs).

Each ``conf/shrink/<method>.yaml`` and ``conf/supernet/spos.yaml`` names its schema first in its
defaults list, so composition itself refuses a wrong type (``shrink.budget=abc``), a misspelt key
and a key foreign to the chosen method (``shrink=topk shrink.pockets.radius=2``), each with its full
key path, before anything is built. The groups are nested: the loop's knobs on top, then one node
per stage, holding that stage's config dataclass (``shrink.pockets.radius``,
``supernet.train.epochs``, ``supernet.search.calib_batch``). A method's schema is generated from
the stages its plan (``shrink.plan`` in its YAML) runs, so a stage's new knob is typed where it is
declared. Every leaf is optional in the schema (null = the stage's own default); required ones are
enforced when the stage config is built (``pipeline/run.py: stage_config``).
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

SIMPLE = {"int": int, "float": float, "str": str, "bool": bool}  # the types OmegaConf checks; others are Any
PIPELINE = Path(__file__).parent


def declared_fields(path: Path, class_name: str) -> list[tuple[str, str]]:
    """Return (name, annotation) of the fields a dataclass declares in ``path``, read from its source.

    Read, not imported: the stage modules import torch and scikit-learn, and the schemas are built
    on every command line before Hydra composes (error paths included). ``tests/pipeline/test_schema.py``
    checks the result against the imported dataclasses.
    """
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    return [(n.target.id, ast.unparse(n.annotation)) for n in cls.body
            if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def schema(name: str, owners: Sequence[tuple[Path, str]]) -> type:
    """Return a dataclass holding every field of ``owners`` (first owner wins a shared name), all defaulting to None."""
    fields = _fields(owners)
    return dataclasses.make_dataclass(name, [(k, t, dataclasses.field(default=None)) for k, t in fields.items()])


def stage_cfg(stage: str) -> tuple[Path, str]:
    """Return where stage ``stage`` declares its config dataclass."""
    return PIPELINE / "stages" / f"{stage}.py", "Cfg"


def stage_nodes(method_stages: Sequence[str]) -> list[str]:
    """Return the config nodes of a method's ``shrink`` group: its stages that have knobs, and ``latent`` with a graph."""
    stages = sorted(set(method_stages) - {"evaluate"})  # evaluate's only knob (progress) is top-level
    return stages + (["latent"] if "graph" in stages else [])


def node_owner(node: str) -> tuple[Path, str]:
    """Return where the config dataclass of ``shrink.<node>`` is declared."""
    return (PIPELINE / "latent.py", "Cfg") if node == "latent" else stage_cfg(node)


def nested(name: str, top: Sequence[tuple[Path, str]], nodes: dict[str, tuple[Path, str]],
           extra: dict[str, Any] | None = None) -> type:
    """Return a schema with the fields of ``top`` at its top and one sub-schema per entry of ``nodes``."""
    subs = {key: schema(f"{name}{key.title()}", [owner]) for key, owner in nodes.items()}
    fields = {**{k: (t, dataclasses.field(default=None)) for k, t in _fields(top).items()},
              **{k: (sub, dataclasses.field(default_factory=sub)) for k, sub in subs.items()}}
    fields.update({k: (t, dataclasses.field(default=None)) for k, t in (extra or {}).items()})
    return dataclasses.make_dataclass(name, [(k, t, f) for k, (t, f) in fields.items()])


def _fields(owners: Sequence[tuple[Path, str]]) -> dict[str, Any]:
    """Return name -> schema type of every field of ``owners`` (first owner wins a shared name)."""
    out: dict[str, Any] = {}
    for path, class_name in owners:
        for field_name, annotation in declared_fields(path, class_name):
            out.setdefault(field_name, Optional[SIMPLE[annotation]] if annotation in SIMPLE else Any)  # noqa: UP045
    return out


def shrink_schemas(plans: dict[str, Any] | None = None) -> dict[str, type]:
    """Return method -> schema of its ``shrink`` group: the loop's knobs on top, one node per stage with knobs."""
    from pipeline.plan import method_plans

    out = {}
    for method, plan in (method_plans() if plans is None else plans).items():
        nodes = {node: node_owner(node) for node in stage_nodes(plan.first + plan.later)}
        out[method] = nested(f"{method.title().replace('_', '')}Shrink", [(PIPELINE / "plan.py", "LoopCfg")], nodes,
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
