"""Shrink NB201 with the benchmark evaluator over datasets x seeds and compare to the full space.

Usage: python experiments/nb201_benchmark/run.py --table benchmarks/nb201.csv [--seeds 5] [overrides ...]
Prints one row per (dataset, seed) and a mean row per dataset; every run is logged to MLflow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the project root

from experiments.common import compose_cfg  # noqa: E402
from pipeline.evaluators.benchmark import read_table  # noqa: E402
from pipeline.run import run  # noqa: E402
from spaces.nb201 import NB201Space  # noqa: E402
from spaces.shrunk import ShrunkSpace  # noqa: E402


def truth(table: Path, dataset: str) -> dict[str, dict[str, float]]:
    """Return the ground-truth rows of one dataset."""
    return read_table(table, NB201Space(), dataset)


def one_run(table: Path, dataset: str, seed: int, overrides: list[str], workdir: Path) -> ShrunkSpace:
    """Run the pipeline once and return its shrunk space."""
    cfg = compose_cfg(["evaluator=benchmark", f"evaluator.path={table}", f"dataset={dataset}", f"seed={seed}",
                       "progress=false", f"tracking.uri=sqlite:///{workdir}/mlflow.db",
                       "tracking.experiment=nb201-benchmark", *overrides])
    result = run(cfg, workdir / f"{dataset}-seed{seed}")
    return ShrunkSpace.load(result.shrunk_space)


def summarise(shrunk: ShrunkSpace, rows: dict[str, dict[str, float]]) -> dict[str, float]:
    """Compare the shrunk space with the full space on reported test accuracy."""
    test = np.array([r["test_acc"] for r in rows.values()])
    top1 = set(sorted(rows, key=lambda a: -rows[a]["test_acc"])[: int(np.ceil(0.01 * len(rows)))])
    members = shrunk.arch_strs()
    member_test = np.array([rows[a]["test_acc"] for a in members])
    return {"size": len(members), "pockets": len(shrunk.pockets), "full_mean": test.mean(),
            "shrunk_mean": member_test.mean(), "shrunk_best": member_test.max(), "global_best": test.max(),
            "top1_hits": len(top1 & set(members))}


def main() -> None:
    """Run the grid and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "ImageNet16-120"])
    parser.add_argument("--workdir", type=Path, default=None)
    args, overrides = parser.parse_known_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nb201-bench-"))
    cols = ["size", "pockets", "full_mean", "shrunk_mean", "shrunk_best", "global_best", "top1_hits"]
    print(f"{'dataset':<15}{'seed':>5}" + "".join(f"{c:>13}" for c in cols))
    for dataset in args.datasets:
        rows = truth(args.table, dataset)
        results = []
        for seed in range(args.seeds):
            stats = summarise(one_run(args.table, dataset, seed, overrides, workdir), rows)
            results.append(stats)
            print(f"{dataset:<15}{seed:>5}" + "".join(f"{stats[c]:>13.2f}" for c in cols), flush=True)
        mean = {c: float(np.mean([r[c] for r in results])) for c in cols}
        print(f"{dataset:<15}{'mean':>5}" + "".join(f"{mean[c]:>13.2f}" for c in cols), flush=True)
    print(f"MLflow store: sqlite:///{workdir}/mlflow.db")


if __name__ == "__main__":
    main()
