"""Exact parameter and FLOP counts of NB201 networks for every cell, without building each one.

A network's count is the all-``none`` network's count plus, for each stage, N times the sum of
its edges' operation counts: operations on different edges share nothing, and ``none``,
``skip_connect`` and pooling hold no parameters and no multiply-adds (torch's FLOP counter
counts only matrix products and convolutions, so sums at the nodes add nothing either).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from spaces.base import Arch
from spaces.costs import count_flops, count_params
from spaces.nb201.model import NB201Network, make_op
from spaces.nb201.space import EDGES, OPS


@dataclass(frozen=True)
class CostTable:
    """Base counts plus per-stage, per-operation counts of one NB201 skeleton."""

    N: int
    base: tuple[int, int]
    per_op: tuple[dict[str, tuple[int, int]], ...]  # one dict per stage: op -> (params, flops)

    def cost(self, arch: Arch) -> tuple[int, int]:
        """Return (params, flops) of the network for ``arch``."""
        params, flops = self.base
        for stage in self.per_op:
            params += self.N * sum(stage[op][0] for op in arch)
            flops += self.N * sum(stage[op][1] for op in arch)
        return params, flops


@cache
def cost_table(C: int, N: int, num_classes: int, input_shape: tuple[int, int, int]) -> CostTable:
    """Measure the base network and each operation at each stage's width and resolution."""
    empty = NB201Network(("none",) * len(EDGES), input_shape[0], num_classes, C=C, N=N)
    base = (count_params(empty), count_flops(empty, input_shape))
    per_op = []
    for stage in range(3):
        channels, side = C * 2**stage, -(-input_shape[1] // 2**stage)
        per_op.append({op: (count_params(make_op(op, channels)),
                            count_flops(make_op(op, channels), (channels, side, side))) for op in OPS})
    return CostTable(N, base, tuple(per_op))
