"""MobileNetV3's weight-sharing supernet: 9 candidate blocks per layer slot; a skipped slot is the identity.

``forward(x, codes)`` takes the arch as option indices (``space.codes``), so one module serves
every subnet, and wrappers such as DistributedDataParallel pass the path through.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spaces.mobilenet.model import FINAL_EXPAND, LAST, STEM, MBConv, make_divisible
from spaces.mobilenet.space import SLOTS, STAGE_SPECS


class MobileNetSupernet(nn.Module):
    """MobileNetV3 skeleton with 9 candidate blocks per layer slot; a skipped slot is the identity."""

    def __init__(self, in_channels: int, num_classes: int, width_mult: float = 1.0, choices: Sequence[str] = ()) -> None:
        super().__init__()
        stem = make_divisible(STEM * width_mult)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                  nn.Hardswish(inplace=True), MBConv(stem, stem, 3, 1, 1, "relu", False))
        self.slots = nn.ModuleList()
        c_in = stem
        for width, stride, act, se in STAGE_SPECS:
            c_out = make_divisible(width * width_mult)
            for slot in range(SLOTS):
                blocks = [MBConv(c_in if slot == 0 else c_out, c_out, int(c[1]), int(c[3]),
                                 stride if slot == 0 else 1, act, se) for c in choices]
                self.slots.append(nn.ModuleList([nn.Identity(), *blocks]))  # option 0 = skip
            c_in = c_out
        final = make_divisible(FINAL_EXPAND * width_mult)
        self.head = nn.Sequential(nn.Conv2d(c_in, final, 1, bias=False), nn.BatchNorm2d(final),
                                  nn.Hardswish(inplace=True), nn.AdaptiveAvgPool2d(1),
                                  nn.Conv2d(final, LAST, 1, bias=False), nn.Hardswish(inplace=True))
        self.classifier = nn.Linear(LAST, num_classes)

    def forward(self, x: torch.Tensor, codes: Sequence[int]) -> torch.Tensor:
        x = self.stem(x)
        for slot, code in zip(self.slots, codes, strict=True):
            x = slot[int(code)](x)
        return self.classifier(self.head(x).flatten(1)).flatten(1)


def load_subnet(net: nn.Module, supernet: MobileNetSupernet, codes: Sequence[int]) -> nn.Module:
    """Copy the supernet's weights of path ``codes`` into ``net`` (the stand-alone network of that arch)."""
    net.stem.load_state_dict(supernet.stem[:3].state_dict())
    chosen = [supernet.stem[3]] + [slot[int(c)] for slot, c in zip(supernet.slots, codes, strict=True) if c]
    for own, shared in zip(net.blocks, chosen, strict=True):
        own.load_state_dict(shared.state_dict())
    net.head.load_state_dict(supernet.head.state_dict())
    net.classifier.load_state_dict(supernet.classifier.state_dict())
    return net
