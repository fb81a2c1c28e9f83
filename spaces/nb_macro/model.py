"""Torch network of NAS-Bench-Macro: MobileNetV2 inverted residuals on a 3-stage CIFAR skeleton."""

from __future__ import annotations

import torch
from torch import nn

from spaces.base import Arch


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    """Return a bias-free convolution followed by batch norm."""
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]


class Skip(nn.Module):
    """The ``id`` choice: identity, or a strided 1x1 projection where the layer changes shape."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.project = nn.Sequential(*conv_bn(c_in, c_out, 1, stride)) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.project is None else self.project(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, kxk depthwise, 1x1 project; residual when shapes agree."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, kernel: int) -> None:
        super().__init__()
        hidden = c_in * expand
        self.body = nn.Sequential(
            *conv_bn(c_in, hidden, 1), nn.ReLU(inplace=True),
            *conv_bn(hidden, hidden, kernel, stride, groups=hidden), nn.ReLU(inplace=True),
            *conv_bn(hidden, c_out, 1),
        )
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x if self.residual else self.body(x)


def make_layer(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """Build one searchable layer."""
    if op == "id":
        return Skip(c_in, c_out, stride)
    expand, kernel = (3, 3) if op == "ir_3x3_t3" else (6, 5)
    return InvertedResidual(c_in, c_out, stride, expand, kernel)


class MacroNetwork(nn.Module):
    """Stem, 3 stages (first layer of each: stride 2, double width), 1x1 conv to 1280, pool, linear."""

    def __init__(self, arch: Arch, in_channels: int, num_classes: int, init_channels: int = 32,
                 stages: tuple[int, ...] = (2, 3, 3)) -> None:
        super().__init__()
        self.stem = nn.Sequential(*conv_bn(in_channels, init_channels, 3), nn.ReLU(inplace=True))
        layers, channels, ops = [], init_channels, iter(arch)
        for size in stages:
            for index in range(size):
                stride, out = (2, channels * 2) if index == 0 else (1, channels)
                layers.append(make_layer(next(ops), channels, out, stride))
                channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(*conv_bn(channels, 1280, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.features(self.stem(x))).flatten(1))
