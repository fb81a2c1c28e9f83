"""Weight-sharing supernets, asked of the space: a space that has one implements ``SupernetSpace``.

Each space's package holds its own supernet (``spaces/nb201/supernet.py``,
``spaces/mobilenet/supernet.py``); the pipeline never names a space class.
"""

from __future__ import annotations

from torch import nn

from pipeline.errors import ConfigError
from spaces.base import SearchSpace, SupernetSpace


def has_supernet(space: SearchSpace) -> bool:
    """Tell whether ``space`` offers a weight-sharing supernet."""
    return isinstance(space, SupernetSpace)


def build_supernet(space: SearchSpace, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Return the supernet of ``space`` for inputs of ``input_shape``."""
    if not has_supernet(space):
        raise ConfigError(f"space {space.name!r} has no supernet (its package defines no build_supernet); "
                          "use supernet=none")
    return space.build_supernet(input_shape, num_classes)


def extract_subnet(supernet: nn.Module, space: SearchSpace, arch: tuple, input_shape: tuple[int, ...],
                   num_classes: int) -> nn.Module:
    """Return the stand-alone network of ``arch`` carrying the supernet's weights (for fine-tuning)."""
    net = space.build_model(arch, input_shape, num_classes)
    return space.load_subnet(net, supernet, space.codes([arch])[0])
