"""Torch network of NAS-Bench-101, following its reference TensorFlow model builder.

Stem conv3x3-bn-relu, then ``num_stacks`` stacks of ``cells_per_stack`` cells with a 2x2
max-pool (and doubled channels) between stacks, global average pool, linear classifier. Inside
a cell, interior vertices split the output channels; vertices fed by the input get a 1x1
projection; the output concatenates the vertices feeding it (plus a projected input on an
input->output edge).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ConvBnRelu(nn.Sequential):
    """Convolution (no bias), batch norm, ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=False))


def make_op(name: str, channels: int) -> nn.Module:
    """Build one interior op at ``channels`` width."""
    if name == "conv3x3-bn-relu":
        return ConvBnRelu(channels, channels, 3)
    if name == "conv1x1-bn-relu":
        return ConvBnRelu(channels, channels, 1)
    return nn.MaxPool2d(3, 1, 1)


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """Return each vertex's width (the reference ``compute_vertex_channels``)."""
    v = len(matrix)
    channels = [0] * v
    channels[0], channels[-1] = c_in, c_out
    if v == 2:
        return channels
    fan_in = int(matrix[1:, -1].sum())
    share, extra = divmod(c_out, fan_in)
    for k in range(1, v - 1):
        if matrix[k, -1]:
            channels[k] = share + (1 if extra > 0 else 0)
            extra -= 1
    for k in range(v - 3, 0, -1):
        if not matrix[k, -1]:
            for dst in range(k + 1, v - 1):
                if matrix[k, dst]:
                    channels[k] = max(channels[k], channels[dst])
    return channels


class Cell(nn.Module):
    """One NAS-Bench-101 cell for a pruned spec."""

    def __init__(self, matrix: np.ndarray, ops: list[str], c_in: int, c_out: int) -> None:
        super().__init__()
        self.matrix, v = matrix, len(matrix)
        self.channels = vertex_channels(c_in, c_out, matrix)
        self.ops = nn.ModuleList([nn.Identity()] + [make_op(ops[k], self.channels[k]) for k in range(1, v - 1)])
        self.projections = nn.ModuleDict({
            str(k): ConvBnRelu(c_in, self.channels[k], 1) for k in range(1, v) if matrix[0, k]
        })

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = len(self.matrix)
        states = [x]
        for k in range(1, v - 1):
            inputs = [states[src][:, : self.channels[k]] for src in range(1, k) if self.matrix[src, k]]
            if self.matrix[0, k]:
                inputs.append(self.projections[str(k)](x))
            states.append(self.ops[k](sum(inputs)))
        outs = [states[src] for src in range(1, v - 1) if self.matrix[src, -1]]
        if not outs:
            return self.projections[str(v - 1)](x)
        out = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        return out + self.projections[str(v - 1)](x) if self.matrix[0, -1] else out


class NB101Network(nn.Module):
    """Stem, stacks of cells with down-sampling between them, pool, classifier."""

    def __init__(self, matrix: np.ndarray, ops: list[str], in_channels: int, num_classes: int,
                 stem_channels: int = 128, num_stacks: int = 3, cells_per_stack: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnRelu(in_channels, stem_channels, 3)]
        c_in = channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, 2))
                channels *= 2
            for _ in range(cells_per_stack):
                layers.append(Cell(matrix, ops, c_in, channels))
                c_in = channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))
