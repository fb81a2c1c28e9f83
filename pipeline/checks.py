"""Value checks of a composed config that Hydra's types cannot express: each knob's declared rule (range,
choices: pipeline/config/), seeds, finiteness, tracking stores, writable output places. Each refusal is one
line naming the key."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline.config.knobs import check, check_mapping
from pipeline.errors import ConfigError


def check_seed(value: Any) -> None:
    """Refuse a seed that is not a non-negative integer."""
    if isinstance(value, bool) or not str(value).lstrip("+").isdigit():
        raise ConfigError(f"seed={value!r} is not a non-negative integer; write e.g. seed=3 (a sweep: -m seed=0,1,2)")


def check_values(cfg: Any, config_name: str = "config") -> None:
    """Refuse, by its full key, any value of a composed config that breaks its declared rule (pipeline/config/)."""
    from pipeline.config.groups import TARGET_RULES, BenchCfg, ConstraintsCfg, SearchCfg, TrackingCfg
    from pipeline.schema import check_values as check_shrink
    from pipeline.schema import interpolated, supernet_schema

    def plain(group: str, resolve: bool = True) -> dict[str, Any] | None:
        node = cfg.get(group)
        return OmegaConf.to_container(node, resolve=resolve) if OmegaConf.is_dict(node) else None

    top = {"bench": BenchCfg, "search": SearchCfg}.get(config_name)  # a command's own knobs, at the top
    if top is not None:
        raw = {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"}
        check(top, {k: v for k, v in raw.items() if not (isinstance(v, str) and "${" in v)}, "")
    for group, rules in TARGET_RULES.items():  # a `_target_` group: its knobs are its constructor's arguments
        if (values := plain(group)) is not None:
            check_mapping(rules, values, group)
    for group, cls in (("tracking", TrackingCfg), ("constraints", ConstraintsCfg)):
        if (values := plain(group)) is not None:
            check(cls, values, group)
    if "tracking" in cfg:
        check_tracking_uri(str(cfg.tracking.uri))
    if (values := plain("supernet")) is not None and {"train", "search"} & set(values):
        check(supernet_schema(), values, "supernet", interpolated(plain("supernet", resolve=False)))
    if (values := plain("shrink")) is not None:  # refused now, without importing a stage
        check_shrink(values, interpolated(plain("shrink", resolve=False)))

TRACKING_SCHEMES = ("sqlite:///", "http://", "https://", "postgresql://", "mysql://", "mssql://", "databricks")


def check_tracking_uri(uri: str) -> None:
    """Refuse a tracking store MLflow would reject deep inside a run: a file store, or an unknown scheme."""
    if uri.startswith(TRACKING_SCHEMES):
        return
    if uri.startswith("file:") or "://" not in uri:
        raise ConfigError(f"tracking.uri={uri!r} is a file store, which MLflow no longer develops; use an embedded "
                          "SQLite store (tracking.uri=sqlite:///mlflow.db) or a server (http://host:5000)")
    raise ConfigError(f"tracking.uri={uri!r}: unknown scheme {uri.split('://')[0]!r}; use sqlite:///PATH, "
                      "http(s)://HOST:PORT or a database URI (postgresql://, mysql://, mssql://)")


def check_finite(cfg: Any) -> None:
    """Refuse a NaN or infinite setting anywhere outside Hydra's node: no knob means anything by it."""
    from omegaconf.errors import OmegaConfBaseException

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"{path}={node} is not a finite number; give a finite value (or null where the key "
                              "allows none)")

    for key in (k for k in cfg if k != "hydra"):
        try:
            walk(OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key], str(key))
        except OmegaConfBaseException:  # an interpolation only Hydra's job can resolve: checked when it runs
            continue


def check_writable(cfg: Any, multirun: bool) -> None:
    """Refuse an output folder or SQLite store on a read-only file system before Hydra makes a folder there."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        folder = Path(str(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir))
        uri = str(cfg.tracking.uri) if "tracking" in cfg else ""
    except OmegaConfBaseException:  # a folder pattern only Hydra's job can resolve: Hydra will say
        return
    db = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    for path, what in ((folder, "output folder"), (db, "MLflow store")):
        if path is None:
            continue
        existing = next(p for p in (path, *path.absolute().parents) if p.exists())
        if not os.access(existing, os.W_OK):
            key = "tracking.uri" if what == "MLflow store" else "hydra.run.dir"
            raise ConfigError(f"{what} {str(path)!r} cannot be written ({existing} is read-only); "
                              f"make it writable or choose another with {key}=...")

