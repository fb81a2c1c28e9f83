"""The NAS-Bench-Macro space (Su et al., CVPR 2021): one choice per layer, strings of 8 digits."""

from __future__ import annotations

from typing import Any

from spaces.base import Arch, CategoricalSpace
from spaces.errors import InvalidArchError

OPS = ("id", "ir_3x3_t3", "ir_5x5_t6")  # digit 0, 1, 2 of the benchmark's keys
STAGES = (2, 3, 3)  # layers per stage; the first layer of each stage halves resolution, doubles width


class NBMacroSpace(CategoricalSpace):
    """8 searchable layers in 3 stages; the benchmark's key (e.g. ``02012100``) is the arch string."""

    name = "nb_macro"

    def __init__(self, init_channels: int = 32) -> None:
        super().__init__([f"layer {i}" for i in range(sum(STAGES))], [OPS] * sum(STAGES))
        self.init_channels = init_channels

    def to_str(self, arch: Arch) -> str:
        """Write one digit per layer."""
        return "".join(str(OPS.index(op)) for op in self.validate(arch))

    def from_str(self, text: str) -> Arch:
        """Parse 8 digits in 0..2, naming the bad layer."""
        if not isinstance(text, str) or len(text) != len(self.decisions):
            raise InvalidArchError(f"nb_macro: {text!r} must be {len(self.decisions)} digits in 0..2, e.g. '02012100'")
        for layer, char in enumerate(text):
            if char not in "012":
                raise InvalidArchError(f"nb_macro: layer {layer}: {char!r} is not one of 0 (id), 1 (ir_3x3_t3), 2 (ir_5x5_t6)")
        return tuple(OPS[int(c)] for c in text)

    def equivalence_key(self, arch: Arch) -> str:
        """Identity layers after a stage's first are no-ops: only the order of the others matters."""
        self.validate(arch)
        parts, start = [], 0
        for size in STAGES:
            first, rest = arch[start], [op for op in arch[start + 1 : start + size] if op != "id"]
            parts.append(f"{first}|{','.join(rest)}")
            start += size
        return "/".join(parts)

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Build the benchmark's network (stem, 8 layers, 1x1 conv to 1280, pool, linear)."""
        from spaces.nb_macro.model import MacroNetwork

        return MacroNetwork(self.validate(arch), input_shape[0], num_classes, self.init_channels, STAGES)

    def config(self) -> dict[str, Any]:
        """Return the arguments that rebuild this space."""
        return {"_target_": "spaces.nb_macro.NBMacroSpace", "init_channels": self.init_channels}
