"""NB201's weight-sharing supernet: all five ops on every edge of every cell (single-path one-shot).

``forward(x, codes)`` takes the arch as option indices (``space.codes``), so one module serves
every subnet, and wrappers such as DistributedDataParallel pass the path through.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spaces.nb201.model import ResidualReduction, make_op
from spaces.nb201.space import EDGES, OPS


class NB201Supernet(nn.Module):
    """NB201's skeleton with all five ops on every edge of every cell."""

    def __init__(self, in_channels: int, num_classes: int, C: int = 16, N: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        self.layers = nn.ModuleList()
        for stage, channels in enumerate((C, 2 * C, 4 * C)):
            if stage:
                self.layers.append(ResidualReduction(channels // 2, channels))
            self.layers += [nn.ModuleList(nn.ModuleList(make_op(op, channels) for op in OPS) for _ in EDGES)
                            for _ in range(N)]
        self.head = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor, codes: Sequence[int]) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            if isinstance(layer, ResidualReduction):
                x = layer(x)
                continue
            nodes = [x]
            for node in (1, 2, 3):
                nodes.append(sum(layer[k][int(codes[k])](nodes[i]) for k, (j, i) in enumerate(EDGES) if j == node))
            x = nodes[3]
        return self.classifier(self.head(x).flatten(1))


def load_subnet(net: nn.Module, supernet: NB201Supernet, codes: Sequence[int]) -> nn.Module:
    """Copy the supernet's weights of path ``codes`` into ``net`` (the stand-alone network of that arch)."""
    net.stem.load_state_dict(supernet.stem.state_dict())
    for own, shared in zip(net.cells, supernet.layers, strict=True):
        if isinstance(shared, ResidualReduction):
            own.load_state_dict(shared.state_dict())
        else:
            for edge, candidates, code in zip(own.edges, shared, codes, strict=True):
                edge.load_state_dict(candidates[int(code)].state_dict())
    net.head.load_state_dict(supernet.head[:2].state_dict())
    net.classifier.load_state_dict(supernet.classifier.state_dict())
    return net
