"""Training throughput of the SPOS supernet vs one fixed subnet of the same shape, in the same run.

Both train on random tensors shaped like the chosen input (no data loading, so the figures are
the networks' own cost): the supernet draws a new path every step from the space, the fixed
subnet is the stand-alone network of one arch. Prints images/s of each, their ratio and, on a
GPU, the mean utilisation sampled by nvidia-smi during each measurement. CPU figures are labelled
as such.

Usage: python experiments/supernet/throughput.py [--space nb201|mobilenet] [--input 3 32 32]
       [--batch 256] [--steps 50] [--device auto]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.evaluators.train import pick_device  # noqa: E402
from pipeline.supernet.models import build_supernet  # noqa: E402
from spaces.mobilenet import MobileNetSpace  # noqa: E402
from spaces.nb201 import NB201Space  # noqa: E402


class Utilisation:
    """Sample GPU utilisation with nvidia-smi in a background thread."""

    def __init__(self, device: torch.device) -> None:
        self.samples: list[float] = []
        self.active = device.type == "cuda"
        self.index = device.index or 0
        self._stop = threading.Event()

    def __enter__(self) -> Utilisation:
        if self.active:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                      f"--id={self.index}"], capture_output=True, text=True, timeout=5).stdout
                self.samples.append(float(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError):
                self.active = False
                return
            time.sleep(0.2)

    @property
    def mean(self) -> float:
        """Return the mean sampled utilisation (NaN without samples)."""
        return float(np.mean(self.samples)) if self.samples else float("nan")


def measure(step, steps: int, batch: int, device: torch.device) -> tuple[float, float]:
    """Return (images/s, mean GPU utilisation) of ``steps`` calls of ``step`` after 5 warm-up calls."""
    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    with Utilisation(device) as util:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return steps * batch / seconds, util.mean


def main() -> None:
    """Measure both networks and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", choices=("nb201", "mobilenet"), default="nb201")
    parser.add_argument("--input", type=int, nargs=3, default=[3, 32, 32])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    device = pick_device(args.device)
    fast = device.type == "cuda"
    space = NB201Space() if args.space == "nb201" else MobileNetSpace()
    shape = tuple(args.input)
    rng = np.random.default_rng(0)
    fixed_arch = space.sample(rng)
    x = torch.randn(args.batch, *shape, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    if fast:
        x = x.contiguous(memory_format=torch.channels_last)

    def stepper(model, path):
        model.to(device)
        if fast:
            model.to(memory_format=torch.channels_last)
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
                loss = F.cross_entropy(path(model), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step

    supernet = build_supernet(space, shape, args.classes)
    super_step = stepper(supernet, lambda m: m(x, space.codes([space.sample(rng)])[0]))
    fixed_step = stepper(space.build_model(fixed_arch, shape, args.classes), lambda m: m(x))
    label = torch.cuda.get_device_name(device) if fast else f"CPU ({torch.get_num_threads()} threads)"
    rows = [("supernet (new path every step)", *measure(super_step, args.steps, args.batch, device)),
            ("fixed subnet", *measure(fixed_step, args.steps, args.batch, device))]
    print(f"device: {label}; space {space.name}, input {shape}, batch {args.batch}, {args.steps} steps, "
          f"{'bf16 autocast + channels-last' if fast else 'fp32'}")
    print(f"{'network':32} {'images/s':>10} {'GPU util %':>10}")
    for name, rate, util in rows:
        print(f"{name:32} {rate:>10.0f} {util:>10.1f}")
    print(f"supernet / fixed subnet throughput ratio: {rows[0][1] / rows[1][1]:.3f}")


if __name__ == "__main__":
    main()
