"""Training throughput of the SPOS supernet vs one fixed subnet of the same shape, in the same run.

Both train on random tensors shaped like the chosen input (no data loading, so the figures are
the networks' own cost): the supernet draws a new path every step from the space, the fixed
subnet is the stand-alone network of one arch. Each network is measured in a child process of its
own, so its peak memory is its own: on a GPU the peak of allocated CUDA memory, on a CPU the growth
of the process's peak resident memory over its size before the network was built. Prints
images/s of each, their ratio, peak memory and, on a GPU, the mean utilisation sampled by
nvidia-smi during each measurement. CPU figures are labelled as such.

Usage: python experiments/supernet/throughput.py [--space nb201|mobilenet] [--input 3 32 32]
       [--C 16 --N 5] [--batch 256] [--steps 50] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import resource
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


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_one(args: argparse.Namespace) -> dict[str, float | str]:
    """Measure the network ``args.only`` in this process; return its figures."""
    device = pick_device(args.device)
    fast = device.type == "cuda"
    space = NB201Space(C=args.C, N=args.N) if args.space == "nb201" else MobileNetSpace()
    shape = tuple(args.input)
    rss_before = peak_rss_mib()
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

    if args.only == "supernet":
        step = stepper(build_supernet(space, shape, args.classes), lambda m: m(x, space.codes([space.sample(rng)])[0]))
    else:
        step = stepper(space.build_model(fixed_arch, shape, args.classes), lambda m: m(x))
    if fast:
        torch.cuda.reset_peak_memory_stats(device)
    rate, util = measure(step, args.steps, args.batch, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if fast else peak_rss_mib() - rss_before
    label = torch.cuda.get_device_name(device) if fast else f"CPU ({torch.get_num_threads()} threads)"
    return {"device": label, "images_per_s": rate, "util": util, "peak_mib": peak,
            "precision": "bf16 autocast + channels-last" if fast else "fp32"}


def main() -> None:
    """Measure both networks, each in a child process, and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", choices=("nb201", "mobilenet"), default="nb201")
    parser.add_argument("--input", type=int, nargs=3, default=[3, 32, 32])
    parser.add_argument("--C", type=int, default=16, help="NB201 skeleton channels")
    parser.add_argument("--N", type=int, default=5, help="NB201 cells per stage")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--only", choices=("supernet", "fixed"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure_one(args)))
        return
    rows = []
    for name, only in (("supernet (new path every step)", "supernet"), ("fixed subnet", "fixed")):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--only", only], capture_output=True,
                               text=True, check=False)
        if child.returncode:
            sys.exit(f"measuring the {only} network failed:\n{child.stderr.strip()}")
        rows.append((name, json.loads(child.stdout.strip().splitlines()[-1])))
    first = rows[0][1]
    shape = tuple(args.input)
    space = f"nb201 (C={args.C}, N={args.N})" if args.space == "nb201" else args.space
    memory = "peak RSS +MiB" if first["device"].startswith("CPU") else "peak CUDA MiB"
    print(f"device: {first['device']}; space {space}, input {shape}, batch {args.batch}, {args.steps} steps, "
          f"{first['precision']}")
    print(f"{'network':32} {'images/s':>10} {'GPU util %':>10} {memory:>14}")
    for name, got in rows:
        print(f"{name:32} {got['images_per_s']:>10.0f} {got['util']:>10.1f} {got['peak_mib']:>14.0f}")
    print(f"supernet / fixed subnet throughput ratio: {rows[0][1]['images_per_s'] / rows[1][1]['images_per_s']:.3f}; "
          f"peak memory ratio: {rows[0][1]['peak_mib'] / max(rows[1][1]['peak_mib'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
