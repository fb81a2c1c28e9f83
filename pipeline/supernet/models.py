"""Weight-sharing supernets: every candidate op of a decision holds its own weights, and a
forward pass runs one path (single-path one-shot, Guo et al., ECCV 2020).

``forward(x, codes)`` takes the arch as option indices (``space.codes``), so one module serves
every subnet, and wrappers such as DistributedDataParallel pass the path through.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pipeline.errors import ConfigError
from spaces.base import SearchSpace
from spaces.mobilenet import MobileNetSpace
from spaces.mobilenet.model import FINAL_EXPAND, LAST, STEM, MBConv, make_divisible
from spaces.mobilenet.space import SLOTS, STAGE_SPECS
from spaces.nb201 import EDGES, OPS, NB201Space
from spaces.nb201.model import ResidualReduction, make_op


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


SUPERNET_SPACES = (NB201Space, MobileNetSpace)


def build_supernet(space: SearchSpace, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Return the supernet of ``space`` for inputs of ``input_shape``."""
    if isinstance(space, NB201Space):
        return NB201Supernet(input_shape[0], num_classes, space.C, space.N)
    if isinstance(space, MobileNetSpace):
        return MobileNetSupernet(input_shape[0], num_classes, space.width_mult, space.options[0][1:])
    raise ConfigError(f"no supernet for space {space.name!r}; supernets exist for nb201 and mobilenet "
                      "(use supernet=none)")


def extract_subnet(supernet: nn.Module, space: SearchSpace, arch: tuple, input_shape: tuple[int, ...],
                   num_classes: int) -> nn.Module:
    """Return the stand-alone network of ``arch`` carrying the supernet's weights (for fine-tuning)."""
    net = space.build_model(arch, input_shape, num_classes)
    codes = space.codes([arch])[0]
    if isinstance(supernet, NB201Supernet):
        net.stem.load_state_dict(supernet.stem.state_dict())
        for own, shared in zip(net.cells, supernet.layers, strict=True):
            if isinstance(shared, ResidualReduction):
                own.load_state_dict(shared.state_dict())
            else:
                for edge, candidates, code in zip(own.edges, shared, codes, strict=True):
                    edge.load_state_dict(candidates[int(code)].state_dict())
        net.head.load_state_dict(supernet.head[:2].state_dict())
    else:
        net.stem.load_state_dict(supernet.stem[:3].state_dict())
        chosen = [supernet.stem[3]] + [slot[int(c)] for slot, c in zip(supernet.slots, codes, strict=True) if c]
        for own, shared in zip(net.blocks, chosen, strict=True):
            own.load_state_dict(shared.state_dict())
        net.head.load_state_dict(supernet.head.state_dict())
    net.classifier.load_state_dict(supernet.classifier.state_dict())
    return net
