"""Can a benchmark table tell its good archs apart? The top-10% spread of test accuracy vs seed-to-seed noise.

Noise: archs trained under two seeds (one table holding both, or a second table of the same
protocol); the per-training noise is the standard deviation of the seed difference over sqrt(2).
Spread: the standard deviation (and range) of test accuracy among the top 10% of archs ranked by
validation accuracy, from seed-0 rows (as a search would see them). A table resolves its top only
when the spread is clearly larger than the noise.

A table that is also a cache (``evaluator.table``) holds the archs searches asked for, which are
not a uniform sample; ``--uniform N`` keeps only the first N archs of the uniform sample
``pipeline.bench`` draws (``n=N``, sampling seed 0) for the spread.

Usage: python experiments/fashion_mnist_table/spread.py [--uniform N] TABLE [SECOND_SEED_TABLE ...]
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def read(paths: list[Path]) -> dict[str, dict[int, dict[str, float]]]:
    """Return arch -> seed -> numeric columns, over every given table."""
    out: dict[str, dict[int, dict[str, float]]] = defaultdict(dict)
    for path in paths:
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                numbers = {k: float(v) for k, v in row.items() if k.startswith(("val_acc", "test_acc")) and v}
                out[row["arch"]][int(float(row["seed"]))] = numbers
    return out


def figures(table: dict[str, dict[int, dict[str, float]]], metric: str, top: float = 0.1) -> dict[str, float]:
    """Return the noise and the top spread of ``metric`` (test_acc, or test_acc_e<k> with its val_acc_e<k>)."""
    val = metric.replace("test", "val")
    pairs = np.array([[s[0][metric], s[1][metric]] for s in table.values() if 0 in s and 1 in s])
    first = [(s[0][val], s[0][metric]) for s in table.values() if 0 in s]
    ranked = np.array([t for _, t in sorted(first, reverse=True)])
    head = ranked[: max(3, int(round(top * len(ranked))))]
    noise = float(np.std(pairs[:, 0] - pairs[:, 1], ddof=1) / np.sqrt(2)) if len(pairs) > 1 else float("nan")
    return {"archs": float(len(ranked)), "pairs": float(len(pairs)), "noise_sd": noise,
            "all_sd": float(np.std(ranked)), "top_sd": float(np.std(head)), "top_range": float(np.ptp(head)),
            "top_over_noise": float(np.std(head) / noise) if noise else float("nan"), "best": float(ranked.max()),
            "median": float(np.median(ranked))}


def uniform_prefix(n: int) -> set[str]:
    """Return the first ``n`` archs of the bench's uniform NB201 sample (sampling seed 0)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from pipeline.bench import arch_list
    from spaces.nb201 import NB201Space

    return set(arch_list(NB201Space(), n, 0))


def main() -> None:
    """Print the figures for every recorded test-accuracy column."""
    args = sys.argv[1:]
    keep = None
    if args[:1] == ["--uniform"]:
        keep, args = uniform_prefix(int(args[1])), args[2:]
    paths = [Path(p) for p in args]
    if not paths:
        sys.exit(__doc__.strip().splitlines()[-1])
    table = read(paths)
    if keep is not None:
        table = {a: s for a, s in table.items() if a in keep or any(k != 0 for k in s)}
    metrics = sorted({k for s in table.values() for r in s.values() for k in r if k.startswith("test_acc")})
    keys = ("archs", "pairs", "noise_sd", "all_sd", "top_sd", "top_range", "top_over_noise", "best", "median")
    print(f"{'column':<12} " + " ".join(f"{k:>14}" for k in keys))
    for metric in metrics:
        values = figures(table, metric)
        print(f"{metric:<12} " + " ".join(f"{values[k]:>14.2f}" for k in keys))


if __name__ == "__main__":
    main()
