"""A tiny exhaustive space of small MLPs (27 archs) used by tests and quick runs."""

from __future__ import annotations

from typing import Any

from spaces.base import Arch, CategoricalSpace

WIDTHS = ("8", "32", "128")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
DEPTHS = ("1", "2", "3")


class ToySpace(CategoricalSpace):
    """MLPs chosen by hidden width, activation and depth; strings read ``width=32;activation=relu;depth=2``."""

    name = "toy"

    def __init__(self) -> None:
        super().__init__(["width", "activation", "depth"], [WIDTHS, ACTIVATIONS, DEPTHS])

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Build the MLP over the flattened input."""
        from torch import nn

        width, activation, depth = self.validate(arch)
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[activation]
        features = 1
        for dim in input_shape:
            features *= dim
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(int(depth)):
            layers += [nn.Linear(features, int(width)), act()]
            features = int(width)
        return nn.Sequential(*layers, nn.Linear(features, num_classes))

    def config(self) -> dict[str, Any]:
        """Return the arguments that rebuild this space."""
        return {"_target_": "spaces.toy.ToySpace"}
