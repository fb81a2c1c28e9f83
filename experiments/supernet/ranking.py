"""Supernet ranking quality on the shrunk space vs the full space (NB201 on scikit-learn digits).

For each seed, one shrinkage run (LISSNAS, benchmark lookups on a digits table built by
``python -m pipeline.bench``) is followed by two SPOS supernets trained on real digits images:
one drawing paths from the shrunk space, one from the full space. Each supernet scores (BN
recalibrated, inherited weights) the shrunk space's members and a same-size uniform set of the
full space; Kendall's tau / Spearman's rho against the table's test accuracy are printed per
seed and averaged, with the evolutionary search's pick and its true accuracy.

Usage: python experiments/supernet/ranking.py --table benchmarks/nb201_digits.csv [--seeds 0 1 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.common import compose_cfg  # noqa: E402
from pipeline.artifacts import read_json  # noqa: E402
from pipeline.run import run  # noqa: E402

KEYS = ("shrunk_kendall_tau", "shrunk_spearman", "random_kendall_tau", "random_spearman", "best_reference")


def one(table: Path, seed: int, sample_from: str, epochs: int, eval_archs: int, out: Path) -> dict[str, float]:
    """Run shrinkage + supernet for one seed and path source; return the search stage's figures."""
    run_dir = out / f"seed{seed}"
    overrides = ["evaluator=benchmark", f"evaluator.path={table}", "dataset=digits", f"seed={seed}",
                 "progress=false", f"tracking.uri=sqlite:///{out}/mlflow.db", "supernet.enabled=true",
                 f"supernet.train.sample_from={sample_from}", f"supernet.train.epochs={epochs}",
                 f"supernet.search.eval_archs={eval_archs}"]
    folder = run_dir / sample_from
    for stage in ("supernet", "search"):  # the shrinkage rounds are shared; supernets are not
        if (run_dir / stage).exists():
            (run_dir / stage).rename(folder.with_name(f"{sample_from}-prev-{stage}"))
    result = run(compose_cfg(list(overrides)), run_dir)
    figures = {**read_json(result.run_dir / "search" / "_done.json")["metrics"],
               "size": read_json(result.run_dir / "emit" / "_done.json")["metrics"]["shrunk_size"]}
    for stage in ("supernet", "search"):
        (run_dir / stage).rename(run_dir / f"{sample_from}-{stage}")
    return figures


def main() -> None:
    """Run every seed twice (shrunk / full paths) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-archs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="supernet-ranking-"))
    print(f"{'seed':>4} {'paths':>6} {'size':>5} " + " ".join(f"{k:>19}" for k in KEYS), flush=True)
    results: dict[str, list[dict[str, float]]] = {"shrunk": [], "full": []}
    for seed in args.seeds:
        for source in ("shrunk", "full"):
            figures = one(args.table.resolve(), seed, source, args.epochs, args.eval_archs, out)
            results[source].append(figures)
            print(f"{seed:>4} {source:>6} {figures['size']:>5.0f} "
                  + " ".join(f"{figures.get(k, float('nan')):>19.3f}" for k in KEYS), flush=True)
    for source, rows in results.items():
        print(f"mean {source:>6}       " + " ".join(f"{np.nanmean([r.get(k, np.nan) for r in rows]):>19.3f}" for k in KEYS))
    print(f"runs: {out}")


if __name__ == "__main__":
    main()
