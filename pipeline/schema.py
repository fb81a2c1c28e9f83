"""Typed schemas of the config groups, registered with Hydra's ConfigStore (structured configs).

Each ``conf/shrink/<method>.yaml`` and ``conf/supernet/spos.yaml`` names its schema first in its
defaults list, so composition itself refuses a wrong type (``shrink.budget=abc``), a misspelt key
and a key foreign to the chosen method (``shrink=topk shrink.radius=2``), each with its full key
path, before anything is built. A method's schema is generated from the config dataclasses of the
stages its plan (``shrink.plan`` in its YAML) runs, so a stage's new knob is typed where it is declared. Every field is optional
in the schema (null = the stage's own default); required ones are enforced when the stage config
is built (``pipeline/run.py: typed_settings``).
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


def schema(name: str, owners: Sequence[tuple[Path, str]], extra: dict[str, Any] | None = None) -> type:
    """Return a dataclass holding every field of ``owners`` (first owner wins a shared name), all defaulting to None."""
    fields: dict[str, Any] = {}
    for path, class_name in owners:
        for field_name, annotation in declared_fields(path, class_name):
            fields.setdefault(field_name, Optional[SIMPLE[annotation]] if annotation in SIMPLE else Any)  # noqa: UP045
    fields.update(extra or {})
    return dataclasses.make_dataclass(name, [(k, t, dataclasses.field(default=None)) for k, t in fields.items()])


def stage_cfg(stage: str) -> tuple[Path, str]:
    """Return where stage ``stage`` declares its config dataclass."""
    return PIPELINE / "stages" / f"{stage}.py", "Cfg"


def shrink_schemas() -> dict[str, type]:
    """Return method -> schema of its ``shrink`` group: the loop, its stages' and (with a graph) the locality knobs."""
    from pipeline.plan import method_plans

    out = {}
    for method, plan in method_plans().items():
        stages = sorted(set(plan.first + plan.later) - {"evaluate"})
        owners = [(PIPELINE / "plan.py", "LoopCfg"), *([(PIPELINE / "latent.py", "Cfg")] if "graph" in stages else []),
                  *(stage_cfg(s) for s in stages)]
        out[method] = schema(f"{method.title().replace('_', '')}Shrink", owners, {"plan": Optional[PlanSchema]})  # noqa: UP045
    return out


def supernet_schema() -> type:
    """Return the schema of ``conf/supernet/spos.yaml``: the supernet and search stages' knobs and ``enabled``."""
    return schema("SposSupernet", [stage_cfg("supernet"), stage_cfg("search")], {"enabled": Any})


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


REGISTERED: list[bool] = []


def register() -> None:
    """Register every schema with Hydra's ConfigStore (once per process)."""
    if REGISTERED:
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for method, node in shrink_schemas().items():
        store.store(group="schema/shrink", name=method, node=node)
    store.store(group="schema/supernet", name="spos", node=supernet_schema())
    store.store(group="schema/tracking", name="default", node=TrackingSchema)
    REGISTERED.append(True)
