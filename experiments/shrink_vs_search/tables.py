"""Print the README's compact tables from a harness ``results.jsonl`` (NB201: dataset x budget).

Usage: python experiments/shrink_vs_search/tables.py experiments/shrink_vs_search/results/nb201/results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}


def cell(rows: list[dict], a: str, b: str, higher_better: bool = True) -> str:
    """Return 'a vs b (better/tied/worse)' over paired rows, counted for a."""
    pairs = np.array([(r[a], r[b]) for r in rows if a in r and b in r])
    if not len(pairs):
        return "-"
    d = pairs[:, 0] - pairs[:, 1] if higher_better else pairs[:, 1] - pairs[:, 0]
    counts = f"{(d > 1e-9).sum()}/{(abs(d) <= 1e-9).sum()}/{(d < -1e-9).sum()}"
    return f"{pairs[:, 0].mean():.2f} vs {pairs[:, 1].mean():.2f} ({counts})"


def main() -> None:
    """Print search-efficiency, quality and downstream tables."""
    rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    datasets = [d for d in NAMES if any(r["dataset"] == d for r in rows)]
    budgets = sorted({r["budget"] for r in rows})
    group = {(d, b): [r for r in rows if r["dataset"] == d and r["budget"] == b] for d in datasets for b in budgets}
    print("| B | " + " | ".join(NAMES[d] for d in datasets) + " |\n|---" * 1 + "|---" * len(datasets) + "|")
    for b in budgets:
        print(f"| {b} | " + " | ".join(cell(group[d, b], "lissnas_topk/mean", "rea_topk/mean") for d in datasets) + " |")
    print("\n| B | dataset | vs REA balls (no surrogate) | vs same rule on REA's evaluations | vs same rule on local search's |")
    print("|---|---|---|---|---|")
    for b in budgets:
        for d in datasets:
            g = group[d, b]
            print(f"| {b} | {NAMES[d]} | {cell(g, 'lissnas/mean', 'rea_ball/mean')} | "
                  f"{cell(g, 'lissnas/mean', 'rea_region/mean')} | {cell(g, 'lissnas/mean', 'ls_region/mean')} |")
    n = max(int(k.split("/")[0][4:]) for r in rows for k in r if k.startswith("down"))
    print(f"\n| B | dataset | REA (N={n}) | local search | TPE | random |\n|---|---|---|---|---|---|")
    for b in budgets:
        for d in datasets:
            g = group[d, b]
            cells = [cell(g, f"down{n}/{s}/shrunk", f"down{n}/{s}/full", False) for s in ("rea", "local_search", "tpe", "random")]
            print(f"| {b} | {NAMES[d]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
