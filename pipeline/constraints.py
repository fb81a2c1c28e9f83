"""Resource constraints: architectures over a FLOPs or parameter budget never enter a pocket.

Budgets use the evaluator's cost convention (torch's FLOP counter: 2 per multiply-add, batch 1;
parameter count). Costs come from the evaluator (a benchmark table's columns, or the network
built for the dataset), so they are known before an architecture is evaluated: samplers draw
only feasible archs, exploration proposes only feasible neighbours, and baselines keep only
feasible members.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.config.groups import ConstraintsCfg


class Constraints(ConstraintsCfg):
    """Upper bounds on an architecture's cost; None = unbounded. Any combination holds at once.

    The bounds are the ``constraints`` group's knobs (pipeline/config/groups.py: ConstraintsCfg).
    """

    @property
    def active(self) -> bool:
        """Tell whether any bound is set."""
        return bool(self.bounds())

    def violation(self, costs: dict[str, float]) -> str | None:
        """Return why ``costs`` break the budget, or None when they fit."""
        for key, bound in self.bounds().items():
            value = costs.get(key, math.nan)
            if not math.isfinite(value):
                return f"{key} unknown ({value}): no budget admits it"
            if value > bound:
                return f"{key} {value:,.{_digits(bound)}f} > {self.name(key)} {bound:,.{_digits(bound)}f}"
        return None

    def arch_violation(self, arch: str, space: Any, evaluator: Any) -> str | None:
        """Return why the arch with canonical string ``arch`` breaks the budget (its costs by ``evaluator``), or None."""
        if not self.active:
            return None
        return self.violation(evaluator.costs(space.from_str(arch)))

    def bounds(self) -> dict[str, float]:
        """Return cost name -> upper bound for every bound that is set."""
        latency = (f"latency_{self.device}", self.max_latency_ms)
        return {k: b for k, b in (("flops", self.max_flops), ("params", self.max_params), latency) if b is not None}

    def name(self, key: str) -> str:
        """Return the config key that bounds cost ``key``."""
        return "max_latency_ms" if key.startswith("latency_") else f"max_{key}"


def _digits(bound: float) -> int:
    """Return the decimals worth showing for a bound (latency in ms: 2; counts: 0)."""
    return 2 if bound < 1000 else 0
