"""Resource constraints: architectures over a FLOPs or parameter budget never enter a pocket.

Budgets use the evaluator's cost convention (torch's FLOP counter: 2 per multiply-add, batch 1;
parameter count). Costs come from the evaluator (a benchmark table's columns, or the network
built for the dataset), so they are known before an architecture is evaluated: samplers draw
only feasible archs, exploration proposes only feasible neighbours, and baselines keep only
feasible members.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Constraints:
    """Upper bounds on an architecture's cost; None = unbounded."""

    max_flops: float | None = None  # FLOPs of one forward pass at batch 1 (torch counter)
    max_params: float | None = None  # parameter count

    @property
    def active(self) -> bool:
        """Tell whether any bound is set."""
        return self.max_flops is not None or self.max_params is not None

    def violation(self, costs: dict[str, float]) -> str | None:
        """Return why ``costs`` break the budget, or None when they fit."""
        for key, bound in self.bounds().items():
            if not math.isfinite(costs[key]):
                return f"{key} unknown ({costs[key]}): no budget admits it"
            if costs[key] > bound:
                return f"{key} {costs[key]:,.0f} > max_{key} {bound:,.0f}"
        return None

    def bounds(self) -> dict[str, float]:
        """Return cost name -> upper bound for every bound that is set."""
        return {k: b for k, b in (("flops", self.max_flops), ("params", self.max_params)) if b is not None}
