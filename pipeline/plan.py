"""What a method runs: its plan of stages (declared in ``conf/shrink/<method>.yaml``) and the loop's knobs.

Light on purpose (no torch, no stage imports): the config schemas (``pipeline/schema.py``) are
built from it before Hydra composes, on every command line, error paths included.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline import CONF_DIR
from pipeline.errors import ConfigError

STAGE_DIR = Path(__file__).with_name("stages")  # one module per stage, named as the stage
FINAL_STAGES = ("emit", "supernet", "search")  # run once after the rounds, in their own top-level folders


def round_stages() -> list[str]:
    """Return the stages a round may run (every stage module but the final ones)."""
    return [p.stem for p in sorted(STAGE_DIR.glob("*.py")) if p.stem != "__init__" and p.stem not in FINAL_STAGES]


@dataclass(frozen=True)
class Plan:
    """The stages of a method's first and later rounds, and which round it emits."""

    first: tuple[str, ...]
    later: tuple[str, ...]  # empty: a single-round method
    choose: str  # "best" (highest mean pocket score) or "last"


def read_plan(raw: Any, method: str) -> Plan:
    """Return the plan a shrink config declares (``shrink.plan``), naming a bad stage or choice."""
    if not isinstance(raw, dict) or not raw.get("first"):
        raise ConfigError(f"method {method}: shrink.plan.first is missing or empty; a shrink config declares its "
                          "stages, e.g. plan: {first: [sample, evaluate, select], later: [], choose: last}")
    first, later = tuple(raw["first"]), tuple(raw.get("later") or ())
    rounds = round_stages()
    for stage in first + later:
        if stage not in rounds:
            raise ConfigError(f"shrink.plan: {stage!r} is not a round stage; one of {', '.join(rounds)}")
    choose = raw.get("choose") or "best"
    if choose not in ("best", "last"):
        raise ConfigError(f"shrink.plan.choose={choose!r} must be best or last")
    return Plan(first, later, choose)


def method_plans() -> dict[str, Plan]:
    """Return the plan of every method shipped in ``conf/shrink`` (what the schemas and the docs are drawn from)."""
    return {path.stem: _file_plan(path) for path in sorted(Path(CONF_DIR, "shrink").glob("*.yaml"))}


def _file_plan(path: Path) -> Plan:
    """Return the plan a method's YAML file declares, named by the file."""
    return read_plan(OmegaConf.to_container(OmegaConf.load(path)).get("plan"), path.stem)


def user_plans(config_dir: str | Path) -> dict[str, Plan]:
    """Return the plans of the methods in ``config_dir/shrink`` (``--config-dir``) that declare a valid one.

    A file without a readable plan is skipped here: composing or running it names the problem.
    """
    plans = {}
    for path in sorted(Path(config_dir, "shrink").glob("*.yaml")):
        try:
            plans[path.stem] = _file_plan(path)
        except (ConfigError, ValueError, AttributeError):
            continue
    return plans


@dataclass(frozen=True)
class LoopCfg:
    """Knobs of the round loop itself."""

    method: str  # the method's name (its stages are shrink.plan)
    budget: int  # total architectures evaluated in the run
    max_rounds: int  # hard cap on rounds
    patience: int = 2  # lissnas: rounds without improvement of the mean pocket score before stopping
    min_delta: float = 0.0  # an improvement smaller than this counts as none


# The selection rule each baseline's select / refine stage runs.
RULES = {"random": "random", "topk": "top", "op_pruning": "op_pruning", "regnet": "regnet"}


def check_values(shrink: dict[str, Any], references: Collection[str] = ()) -> None:
    """Refuse, by full key, a ``shrink`` value out of range or another method's rule (no stage import needed).

    ``references``: leaves (``explore.radius``) whose value interpolates another key; the value is
    checked, and named, at the key it comes from.
    """
    check_rule(shrink.get("method") or "lissnas", shrink)
    check_ranges(_without(shrink, references))


def _without(shrink: dict[str, Any], paths: Collection[str]) -> dict[str, Any]:
    """Return ``shrink`` without the leaves at ``paths`` (``node.key``)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in shrink.items()}
    for path in paths:
        node, _, key = path.rpartition(".")
        holder = out.get(node) if node else out
        if isinstance(holder, dict):
            holder.pop(key, None)
    return out


def interpolated(raw: dict[str, Any]) -> set[str]:
    """Return the leaves of an unresolved ``shrink`` whose value is an interpolation (``${..pockets.radius}``)."""
    return {path for path, value in leaves(raw).items() if isinstance(value, str) and value.startswith("${")}


def check_rule(method: str, shrink: dict[str, Any]) -> None:
    """Refuse another method's selection rule, which would run under this method's name."""
    node = next((n for n in ("select", "refine") if isinstance(shrink.get(n), dict)), None)
    rule = (shrink[node].get("rule") if node else None) or RULES.get(method)
    if method in RULES and rule != RULES[method]:
        other = next((m for m, r in RULES.items() if r == rule), None)
        fix = f"run that method with shrink={other}" if other else f"drop it or set shrink.{node}.rule={RULES[method]}"
        raise ConfigError(f"shrink.{node}.rule={rule!r} is not the rule of method {method} ({RULES[method]}); {fix}")


def leaves(shrink: dict[str, Any]) -> dict[str, Any]:
    """Return the set leaves of ``shrink`` by their path below it (``budget``, ``pockets.radius``), the plan aside."""
    out = {}
    for key, value in shrink.items():
        if isinstance(value, dict) and key != "plan":
            out.update({f"{key}.{k}": v for k, v in value.items() if v is not None})
        elif value is not None and key != "plan":
            out[key] = value
    return out


POSITIVE = ("budget", "max_rounds", "patience", "n_samples", "seeds_per_round", "neighbors_per_seed", "link_distance",
            "max_pockets", "min_pocket_size", "size", "target_size", "batch_size", "pool_per_seed", "trees",
            "explore_pockets", "seeds_per_pocket", "latent_k", "latent_steps", "latent_train")
CHOICES = {"rule": ("random", "top", "op_pruning", "regnet"), "acquisition": ("ucb", "random")}


def check_ranges(shrink: dict[str, Any]) -> None:
    """Reject values outside their meaningful range, naming the full key."""
    for path, value in leaves(shrink).items():
        name, key = path.rpartition(".")[2], f"shrink.{path}"
        if name in POSITIVE and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key}={value!r} must be an integer >= 1")
        if name in ("radius", "fresh_samples", "samples_per_round") and (not isinstance(value, int) or value < 0):
            raise ConfigError(f"{key}={value!r} must be an integer >= 0")
        if name in ("min_delta", "kappa", "target_fraction", "mutation_fraction") and not (
                isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"{key}={value!r} must be a finite number >= 0")
        if name in ("target_fraction", "mutation_fraction") and value > 1.0:
            raise ConfigError(f"{key}={value!r} must lie in [0, 1]")
        if name == "good_quantile" and not 0.0 <= float(value) < 1.0:
            raise ConfigError(f"{key}={value!r} must lie in [0, 1)")
        if name in CHOICES and value not in CHOICES[name]:
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(CHOICES[name])}")
    check_budget_leaves_rounds(shrink)
    if shrink.get("method") == "lissnas":
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
