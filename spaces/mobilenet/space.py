"""A MobileNetV3 macro space in the style of Once-for-All (Cai et al., ICLR 2020).

Five searchable stages (widths 24, 40, 80, 112, 160; strides 2, 2, 2, 1, 2); each stage has
depth 2, 3 or 4, and each of its layers picks a kernel size in {3, 5, 7} and an expansion
ratio in {3, 4, 6}. Per stage that is 9^2 + 9^3 + 9^4 = 7,371 choices, so the space holds
7,371^5 = 21,758,655,492,572,485,851 (about 2.2e19) networks, every one distinct.

Depth-aligned encoding: a stage has 4 layer *slots*; slot i of a stage means the same position
in every arch, and slots beyond the stage's depth hold ``skip``. An arch is the tuple of its 20
slots (``k5e4`` or ``skip``), so the structural distance is the number of differing slots: a
kernel/expansion change, or adding/removing a stage's last layer, is one step. Strings list
each stage's layers, stages joined by ``_``: ``k3e4.k5e6_k3e3.k3e3.k7e6_...``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from spaces.base import Arch, CategoricalSpace
from spaces.errors import InvalidArchError

KERNELS, EXPANDS, DEPTHS = (3, 5, 7), (3, 4, 6), (2, 3, 4)
LAYERS = tuple(f"k{k}e{e}" for k in KERNELS for e in EXPANDS)
SKIP = "skip"
STAGES = 5
SLOTS = max(DEPTHS)
# Stage layout of OFA's MobileNetV3: output width, stride of the first layer, activation, squeeze-excite.
STAGE_SPECS = ((24, 2, "relu", False), (40, 2, "relu", True), (80, 2, "hswish", False),
               (112, 1, "hswish", True), (160, 2, "hswish", True))


class MobileNetSpace(CategoricalSpace):
    """OFA-style MobileNetV3 space; ``width_mult`` scales every width (1.0 = OFA's)."""

    name = "mobilenet"

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__([f"stage {s + 1} layer {i + 1}" for s in range(STAGES) for i in range(SLOTS)],
                         [(SKIP, *LAYERS)] * (STAGES * SLOTS))
        if not width_mult > 0:
            raise ValueError(f"mobilenet: width_mult={width_mult} must be > 0")
        self.width_mult = float(width_mult)

    def size(self) -> int:
        """Return (sum over depths of 9^depth) ^ stages."""
        return sum(len(LAYERS) ** d for d in DEPTHS) ** STAGES

    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw uniformly: each stage's depth with probability proportional to 9^depth, then its layers."""
        weights = np.array([len(LAYERS) ** d for d in DEPTHS], dtype=float)
        out: list[str] = []
        for _ in range(STAGES):
            depth = DEPTHS[int(rng.choice(len(DEPTHS), p=weights / weights.sum()))]
            out += [LAYERS[int(rng.integers(len(LAYERS)))] for _ in range(depth)] + [SKIP] * (SLOTS - depth)
        return tuple(out)

    def check(self, arch: Any) -> InvalidArchError | None:
        """Return an error for a bad slot value or a stage whose layers are not 2..4 leading slots."""
        error = super().check(arch)
        if error is not None:
            return error
        for stage, slots in enumerate(self.stages(arch)):
            depth = sum(s != SKIP for s in slots)
            if depth < min(DEPTHS) or SKIP in slots[:depth]:
                return InvalidArchError(f"mobilenet: stage {stage + 1} slots {list(slots)} must be 2-4 layers "
                                        "followed by skips")
        return None

    @staticmethod
    def stages(arch: Sequence[str]) -> list[tuple[str, ...]]:
        """Split the 20 slots into 5 stages of 4."""
        return [tuple(arch[s * SLOTS:(s + 1) * SLOTS]) for s in range(STAGES)]

    def automaton_step(self, decision: int, state: int, option: int) -> int | None:
        """Accept stages of 2-4 layers then skips: state 1 = this stage has ended (skip seen)."""
        slot = decision % SLOTS
        ended = state if slot else 0
        if self.options[decision][option] == SKIP:
            return 1 if slot >= min(DEPTHS) else None
        return None if ended else 0

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Change one layer's kernel/expansion, add a layer to a stage's end, or remove its last."""
        self.validate(arch)
        return [n for n in super().neighbors(arch) if self.check(n) is None]

    def to_str(self, arch: Arch) -> str:
        """Write each stage's layers joined by '.', stages joined by '_'."""
        return "_".join(".".join(s for s in slots if s != SKIP) for slots in self.stages(self.validate(arch)))

    def from_str(self, text: str) -> Arch:
        """Parse the string form, naming the bad stage or layer."""
        example = "'k3e4.k5e6_k3e3.k3e3.k7e6_k5e4.k5e4_k7e6.k3e3_k3e6.k5e3.k7e4.k3e3'"
        if not isinstance(text, str) or text.count("_") != STAGES - 1:
            raise InvalidArchError(f"mobilenet: {text!r} must be {STAGES} stages joined by '_', e.g. {example}")
        out: list[str] = []
        for stage, part in enumerate(text.split("_")):
            layers = part.split(".")
            if not min(DEPTHS) <= len(layers) <= max(DEPTHS):
                raise InvalidArchError(f"mobilenet: stage {stage + 1} has {len(layers)} layers in {text!r}; "
                                       f"depth must be one of {DEPTHS}")
            bad = [layer for layer in layers if layer not in LAYERS]
            if bad:
                raise InvalidArchError(f"mobilenet: stage {stage + 1} layer {bad[0]!r} is not k{{3,5,7}}e{{3,4,6}}")
            out += layers + [SKIP] * (SLOTS - len(layers))
        return self.validate(tuple(out))

    def sample_restricted(self, allowed: Sequence[Sequence[str]], rng: np.random.Generator) -> Arch:
        """Draw uniformly among the valid archs of a per-slot restriction (rejection)."""
        for _ in range(10_000):
            arch = super().sample_restricted(allowed, rng)
            if self.check(arch) is None:
                return arch
        raise InvalidArchError("mobilenet: the restriction leaves (almost) no valid arch")

    def enumerate_restricted(self, allowed: Sequence[Sequence[str]]) -> list[Arch]:
        """Return the valid archs of a per-slot restriction."""
        return [a for a in itertools.product(*self.restrict(allowed)) if self.check(a) is None]

    def build_supernet(self, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Return the weight-sharing supernet over every arch of this space (capability SupernetSpace)."""
        from spaces.mobilenet.supernet import MobileNetSupernet

        return MobileNetSupernet(input_shape[0], num_classes, self.width_mult, self.options[0][1:])

    def load_subnet(self, net: Any, supernet: Any, codes: Sequence[int]) -> Any:
        """Copy the supernet's weights of path ``codes`` into ``net``."""
        from spaces.mobilenet.supernet import load_subnet

        return load_subnet(net, supernet, codes)

    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Build the MobileNetV3 network of ``arch``."""
        from spaces.mobilenet.model import MobileNetV3

        return MobileNetV3(self.layers(arch), input_shape[0], num_classes, self.width_mult)

    def layers(self, arch: Arch) -> list[list[tuple[int, int]]]:
        """Return (kernel, expansion) of every active layer, per stage."""
        return [[(int(s[1]), int(s[3])) for s in slots if s != SKIP] for slots in self.stages(self.validate(arch))]

    def costs(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> tuple[int, int]:
        """Return (params, FLOPs) in closed form; equal to counting the built network, ~1000x faster."""
        from spaces.mobilenet.model import analytic_costs

        return analytic_costs(self.layers(arch), input_shape, num_classes, self.width_mult)

    def measure_latency_table(self, input_shape: tuple[int, ...], num_classes: int, device: str) -> Any:
        """Time every distinct block on ``device`` (capability LatencySpace)."""
        from spaces.mobilenet.latency import measure_table

        return measure_table(self, input_shape, num_classes, device=device)

    def load_latency_table(self, path: Any) -> Any:
        """Read a saved ``LatencyTable``."""
        from spaces.mobilenet.latency import LatencyTable

        return LatencyTable.load(path)

    def latency(self, arch: Arch, input_shape: tuple[int, ...], table: Any) -> float:
        """Return predicted milliseconds from a ``spaces.mobilenet.latency.LatencyTable`` (the latency hook)."""
        return table.predict(self, self.validate(arch), input_shape)

    def config(self) -> dict[str, Any]:
        """Return the arguments that rebuild this space."""
        return {"_target_": "spaces.mobilenet.MobileNetSpace", "width_mult": self.width_mult}

