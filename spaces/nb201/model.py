"""Torch network for NAS-Bench-201 cells, following the benchmark's macro skeleton.

Stem (3x3 conv + BN) -> N cells (C) -> residual reduction -> N cells (2C) -> residual reduction
-> N cells (4C) -> BN-ReLU -> global pool -> linear. Operations are the benchmark's
ReLU-Conv-BN convolutions, a 3x3 average pool, identity and zero.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces.base import Arch
from spaces.nb201.space import EDGES


class ReLUConvBN(nn.Sequential):
    """ReLU, bias-free convolution, batch norm: the benchmark's convolution operation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation: an all-zero output of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    """Build one cell operation at ``channels`` channels, stride 1."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"nb201: unknown operation {name!r}")


class Cell(nn.Module):
    """A 4-node DAG cell; node j sums op(j<-i)(node i) over i < j; node 3 is the output."""

    def __init__(self, arch: Arch, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(make_op(op, channels) for op in arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            inputs = [self.edges[k](nodes[i]) for k, (j, i) in enumerate(EDGES) if j == node]
            nodes.append(torch.stack(inputs).sum(0))
        return nodes[3]


class ResidualReduction(nn.Module):
    """The benchmark's residual block that halves resolution and changes channels."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The full NB201 network for one cell, with ``N`` cells per stage and ``C`` base channels."""

    def __init__(self, arch: Arch, in_channels: int, num_classes: int, C: int = 16, N: int = 5) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, channels in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResidualReduction(channels // 2, channels))
            layers += [Cell(arch, channels) for _ in range(N)]
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * C, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.head(self.cells(self.stem(x))))
        return self.classifier(features.flatten(1))
