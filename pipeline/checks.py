"""Value checks of a composed config that Hydra's types cannot express: seeds, finiteness, executor and
tracking settings, writable output places. Each refusal is one line naming the key."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline.errors import ConfigError


def check_seed(value: Any) -> None:
    """Refuse a seed that is not a non-negative integer."""
    if isinstance(value, bool) or not str(value).lstrip("+").isdigit():
        raise ConfigError(f"seed={value!r} is not a non-negative integer; write e.g. seed=3 (a sweep: -m seed=0,1,2)")


# executor knob -> (what it must be, test): checked at composition, so no evaluation ever starts with it
EXECUTOR_KNOBS: dict[str, tuple[str, Any]] = {
    "retries": ("an integer >= 0", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "workers": ("a positive integer or auto", lambda v: v == "auto" or (isinstance(v, int) and not isinstance(v, bool)
                                                                         and v >= 1)),
    "threads": ("a positive integer or auto", lambda v: v == "auto" or (isinstance(v, int) and not isinstance(v, bool)
                                                                         and v >= 1)),
    "spawn_after_s": ("a number of seconds >= 0", lambda v: isinstance(v, int | float) and not isinstance(v, bool)
                      and math.isfinite(v) and v >= 0),
    "batch_size": ("a positive integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1),
    "num_cpus": ("a number >= 0", lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0),
    "num_gpus": ("a number >= 0", lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0),
}


def check_executor(node: Any) -> None:
    """Refuse an executor setting of the wrong type or range, naming the key (the group has no schema)."""
    for key, value in OmegaConf.to_container(node, resolve=True).items():
        if key in EXECUTOR_KNOBS and not EXECUTOR_KNOBS[key][1](value):
            raise ConfigError(f"executor.{key}={value!r} must be {EXECUTOR_KNOBS[key][0]}")


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

