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


def _int(low: int) -> tuple[str, Any]:
    """Return the rule 'an integer >= low'."""
    return f"an integer >= {low}", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(low: float, strict: bool = False, high: float | None = None) -> tuple[str, Any]:
    """Return the rule 'a finite number > / >= low (and < high)'."""
    text = f"a number {'>' if strict else '>='} {low}" + (f" and < {high}" if high is not None else "")
    return text, lambda v: (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                            and (v > low if strict else v >= low) and (high is None or v < high))


def _or(rule: tuple[str, Any], *allowed: Any) -> tuple[str, Any]:
    """Return ``rule`` that also accepts the values ``allowed`` (auto, null)."""
    text = rule[0] + "".join(f" or {'null' if a is None else a}" for a in allowed)
    return text, lambda v: v in allowed or rule[1](v)


# group -> knob -> (what it must be, test), for the groups without a typed schema: checked at composition, so
# no evaluation ever starts with such a value. A knob absent from the chosen option is not checked.
GROUP_KNOBS: dict[str, dict[str, tuple[str, Any]]] = {
    "executor": {"retries": _int(0), "workers": _or(_int(1), "auto"), "threads": _or(_int(1), "auto"),
                 "spawn_after_s": _number(0), "batch_size": _int(1), "num_cpus": _number(0), "num_gpus": _number(0)},
    "evaluator": {"epochs": _int(1), "batch_size": _int(1), "lr": _number(0, strict=True),
                  "momentum": _number(0, high=1), "weight_decay": _number(0), "seed": _int(0), "n_batches": _int(1)},
    "dataset": {"size": _int(1), "resolution": _int(1), "channels": _int(1), "n_train": _or(_int(1), None),
                "n_val": _int(1), "n_test": _or(_int(1), None), "split_seed": _int(0),
                "val_fraction": _number(0, strict=True, high=1), "test_fraction": _number(0, strict=True, high=1)},
    "space": {"C": _int(1), "N": _int(1), "width_mult": _number(0, strict=True)},
    "tracking": {"progress_every_s": _number(0)},
}


def check_group(group: str, node: Any) -> None:
    """Refuse a setting of ``group`` of the wrong type or range, naming its key."""
    rules = GROUP_KNOBS.get(group, {})
    for key, value in OmegaConf.to_container(node, resolve=True).items():
        if key in rules and not rules[key][1](value):
            raise ConfigError(f"{group}.{key}={value!r} must be {rules[key][0]}")


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

