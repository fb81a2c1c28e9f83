"""CPU seconds a user waits for `python -m pipeline --help` and for a config refusal, and whether torch loads.

    python experiments/startup/bench.py --runs 10

Each command runs ``--runs`` times in a fresh interpreter; the figure is the child's CPU time (user +
system, from ``getrusage``), which a busy machine does not inflate the way it inflates wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "--help": ["--help"],
    "misspelt key": ["shrink.budgt=3"],
    "bad value": ["shrink.budget=0"],
    "unknown space": ["+space=nb2011"],
}


def cpu_seconds(args: list[str], cwd: str) -> tuple[float, bool, int]:
    """Run ``python -m pipeline ARGS`` once; return its CPU seconds, whether torch was imported, its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    torch = any(line.rstrip().endswith("| torch") for line in done.stderr.splitlines())
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), torch, done.returncode


def main() -> None:
    """Print min / median / max CPU seconds per command and whether torch was imported."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    print(f"{'command':<16} {'min':>6} {'median':>6} {'max':>6}  torch imported  exit")
    with tempfile.TemporaryDirectory() as cwd:
        for name, argv in COMMANDS.items():
            runs = [cpu_seconds(argv, cwd) for _ in range(args.runs)]
            cpu = [r[0] for r in runs]
            print(f"{name:<16} {min(cpu):6.2f} {statistics.median(cpu):6.2f} {max(cpu):6.2f}  "
                  f"{'yes' if any(r[1] for r in runs) else 'no':<14}  {runs[0][2]}")


if __name__ == "__main__":
    main()
