"""Torch network of the MobileNetV3 (OFA-style) space, and its closed-form parameter/FLOP counts.

Layout (OFA's MobileNetV3): conv3x3/2 to 16 (h-swish), a fixed MBConv k3 e1 16->16, the five
searchable stages, 1x1 conv to 960 (h-swish), global pool, 1x1 conv to 1280 (h-swish, no BN),
linear classifier. A block is 1x1 expand (when e > 1) / kxk depthwise (stride on the first layer
of a stage) / optional squeeze-excite / 1x1 project, residual when shapes agree.
"""

from __future__ import annotations

import torch
from torch import nn

from spaces.mobilenet.space import STAGE_SPECS

STEM, FINAL_EXPAND, LAST = 16, 960, 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a width to a multiple of ``divisor``, never dropping more than 10% (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def activation(name: str) -> nn.Module:
    """Return the activation module by name."""
    return nn.ReLU(inplace=True) if name == "relu" else nn.Hardswish(inplace=True)


class SqueezeExcite(nn.Module):
    """Channel attention: pool, 1x1 reduce (ReLU), 1x1 expand, hard sigmoid, rescale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = make_divisible(channels // 4)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, mid, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(mid, channels, 1), nn.Hardsigmoid(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class MBConv(nn.Module):
    """Inverted residual block with optional squeeze-excite."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int, act: str, se: bool) -> None:
        super().__init__()
        hidden = make_divisible(c_in * expand)
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), activation(act)]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), activation(act)]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def block_plan(layers: list[list[tuple[int, int]]], width_mult: float) -> list[tuple[int, int, int, int, int, str, bool]]:
    """Return (c_in, c_out, kernel, expand, stride, act, se) of every block, the fixed first one included."""
    stem = make_divisible(STEM * width_mult)
    plan = [(stem, stem, 3, 1, 1, "relu", False)]
    c_in = stem
    for stage, (width, stride, act, se) in zip(layers, STAGE_SPECS, strict=True):
        c_out = make_divisible(width * width_mult)
        for index, (kernel, expand) in enumerate(stage):
            plan.append((c_in, c_out, kernel, expand, stride if index == 0 else 1, act, se))
            c_in = c_out
    return plan


class MobileNetV3(nn.Module):
    """The network of one arch (``layers``: per stage, (kernel, expansion) of each layer)."""

    def __init__(self, layers: list[list[tuple[int, int]]], in_channels: int, num_classes: int,
                 width_mult: float = 1.0) -> None:
        super().__init__()
        plan = block_plan(layers, width_mult)
        stem, last_stage = plan[0][0], plan[-1][1]
        final = make_divisible(FINAL_EXPAND * width_mult)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                  nn.Hardswish(inplace=True))
        self.blocks = nn.Sequential(*[MBConv(*spec) for spec in plan])
        self.head = nn.Sequential(nn.Conv2d(last_stage, final, 1, bias=False), nn.BatchNorm2d(final),
                                  nn.Hardswish(inplace=True), nn.AdaptiveAvgPool2d(1),
                                  nn.Conv2d(final, LAST, 1, bias=False), nn.Hardswish(inplace=True))
        self.classifier = nn.Linear(LAST, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))).flatten(1))


def _conv(c_in: int, c_out: int, kernel: int, stride: int, groups: int, size: tuple[int, int],
          bias: bool = False) -> tuple[int, int, tuple[int, int]]:
    """Return (params, FLOPs, output size) of one convolution (2 FLOPs per multiply-add)."""
    out = tuple((s + 2 * (kernel // 2) - kernel) // stride + 1 for s in size)
    weights = c_out * (c_in // groups) * kernel * kernel
    return weights + (c_out if bias else 0), 2 * weights * out[0] * out[1], out


def analytic_costs(layers: list[list[tuple[int, int]]], input_shape: tuple[int, ...], num_classes: int,
                   width_mult: float = 1.0) -> tuple[int, int]:
    """Return (params, FLOPs at batch 1) of ``MobileNetV3`` without building it (BN: 2 params/channel)."""
    plan = block_plan(layers, width_mult)
    stem = plan[0][0]
    params, flops, size = _conv(input_shape[0], stem, 3, 2, 1, tuple(input_shape[1:]))
    params += 2 * stem
    for c_in, c_out, kernel, expand, stride, _act, se in plan:
        hidden = make_divisible(c_in * expand)
        parts = [_conv(c_in, hidden, 1, 1, 1, size)] if expand != 1 else []
        parts.append(_conv(hidden, hidden, kernel, stride, hidden, size))
        size = parts[-1][2]
        if se:
            mid = make_divisible(hidden // 4)
            parts += [_conv(hidden, mid, 1, 1, 1, (1, 1), bias=True), _conv(mid, hidden, 1, 1, 1, (1, 1), bias=True)]
        parts.append(_conv(hidden, c_out, 1, 1, 1, size))
        params += sum(p for p, _, _ in parts) + 2 * (hidden * (2 if expand != 1 else 1) + c_out)
        flops += sum(f for _, f, _ in parts)
    final = make_divisible(FINAL_EXPAND * width_mult)
    p1, f1, _ = _conv(plan[-1][1], final, 1, 1, 1, size)
    p2, f2, _ = _conv(final, LAST, 1, 1, 1, (1, 1))
    params += p1 + 2 * final + p2 + LAST * num_classes + num_classes
    flops += f1 + f2 + 2 * LAST * num_classes
    return params, flops
