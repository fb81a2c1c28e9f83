"""What a method runs: its plan of stages, declared in ``conf/shrink/<method>.yaml``.

Light on purpose (no torch, no stage imports): the config schemas (``pipeline/schema.py``) are
built from it before Hydra composes, on every command line, error paths included.
"""

from __future__ import annotations

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
