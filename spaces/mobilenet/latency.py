"""Latency hook for the MobileNetV3 space: per-block lookup tables, as OFA predicts latency.

A network's latency is predicted as the sum of its blocks' latencies, each block keyed by its
signature at its input resolution (``mbconv:28x28:40->80:k5:e6:s2:hswish:se0``, plus ``stem``
and ``head`` entries). ``measure_table`` builds a table on the device at hand by timing every
block the space can contain once; a table measured on a phone (OFA publishes such tables) is
a CSV with columns ``key,ms`` loaded by ``LatencyTable.load``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import torch

from spaces.base import Arch
from spaces.errors import DomainError, InvalidArchError
from spaces.files import atomic_write
from spaces.mobilenet.model import block_plan
from spaces.mobilenet.space import DEPTHS, LAYERS, STAGES, MobileNetSpace


class LatencyError(DomainError, ValueError):
    """A latency table that lacks a block the network needs, or cannot be read."""


def block_keys(space: MobileNetSpace, arch: Arch, input_shape: tuple[int, ...]) -> list[str]:
    """Return the signature of every timed part of ``arch``'s network: stem, blocks, head."""
    plan = block_plan(space.layers(arch), space.width_mult)
    side = (input_shape[1] + 1) // 2  # after the stride-2 stem
    out = [f"stem:{input_shape[1]}x{input_shape[2]}:{input_shape[0]}->{plan[0][0]}"]
    for c_in, c_out, kernel, expand, stride, act, se in plan:
        out.append(f"mbconv:{side}x{side}:{c_in}->{c_out}:k{kernel}:e{expand}:s{stride}:{act}:se{int(se)}")
        side = (side + stride - 1) // stride
    out.append(f"head:{side}x{side}:{plan[-1][1]}")
    return out


class LatencyTable:
    """Block signature -> milliseconds, for one device."""

    def __init__(self, entries: dict[str, float], device: str = "unknown") -> None:
        self.entries, self.device = dict(entries), device

    def predict(self, space: MobileNetSpace, arch: Arch, input_shape: tuple[int, ...]) -> float:
        """Return the predicted latency of ``arch`` in milliseconds (sum over its blocks)."""
        total = 0.0
        for key in block_keys(space, arch, input_shape):
            if key not in self.entries:
                raise LatencyError(f"latency table ({self.device}) has no entry {key!r}; measure it with "
                                   "spaces.mobilenet.latency.measure_table for this input shape and width")
            total += self.entries[key]
        return total

    def save(self, path: str | Path) -> Path:
        """Write the table as CSV (key, ms)."""
        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["key", "ms"])
                writer.writerows(sorted(self.entries.items()))

        return atomic_write(Path(path), write)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        """Read a CSV table with columns key, ms."""
        path = Path(path)
        if not path.is_file():
            raise LatencyError(f"latency table {str(path)!r} not found; build one with measure_table(...).save(path)")
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        try:
            return cls({row["key"]: float(row["ms"]) for row in rows}, device=path.stem)
        except (KeyError, TypeError, ValueError) as err:
            raise LatencyError(f"latency table {str(path)!r} needs numeric columns key, ms: {err}") from None


@torch.no_grad()
def _time(module: torch.nn.Module, shape: tuple[int, ...], device: str, repeats: int) -> float:
    """Return the median milliseconds of one forward pass at batch 1."""
    module = module.to(device).eval()
    x = torch.randn(1, *shape, device=device)
    times = []
    for _ in range(repeats + 2):  # two warm-up passes
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        module(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return float(sorted(times[2:])[len(times[2:]) // 2])


@torch.no_grad()
def measure_table(space: MobileNetSpace, input_shape: tuple[int, ...], num_classes: int = 1000,
                  device: str = "cpu", repeats: int = 10) -> LatencyTable:
    """Time every block signature the space can produce at ``input_shape`` on ``device``."""
    if len(input_shape) != 3:
        raise InvalidArchError(f"mobilenet: input_shape {input_shape} must be (channels, height, width)")
    # A block's signature depends on its stage, first-or-later position and layer choice only, so
    # one arch per layer choice (every stage at full depth) meets every signature.
    probes = [space.from_str("_".join([".".join([layer] * max(DEPTHS))] * STAGES)) for layer in LAYERS]
    entries: dict[str, float] = {}
    for arch in probes:
        model = space.build_model(arch, input_shape, num_classes).eval()
        parts = [model.stem, *model.blocks, torch.nn.Sequential(model.head, torch.nn.Flatten(), model.classifier)]
        x = torch.zeros(1, *input_shape)
        for key, part in zip(block_keys(space, arch, input_shape), parts, strict=True):
            if key not in entries:
                entries[key] = _time(part, tuple(x.shape[1:]), device, repeats)
            x = part(x)
    return LatencyTable(entries, device=device)
