"""Paired comparison of two shrink_vs_search harness results (e.g. locality=latent vs the default).

    python experiments/arch2vec/compare.py experiments/shrink_vs_search/results/nb201_latent/results.jsonl \
        experiments/shrink_vs_search/results/nb201/results.jsonl

Rows pair by (dataset, budget, seed); every cell is ``A mean +- std vs B mean +- std (A better/tied/worse)``.
Columns: emitted space's mean test accuracy, its top-0.1% recall, regret of the best member (all
judged by ground truth), the method's own top-K (search efficiency) and downstream regret of REA
with N=100 more evaluations inside the space (lower is better).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

COLUMNS = (("lissnas/mean", True, "emitted mean test"), ("lissnas/r01", True, "emitted R@0.1%"),
           ("lissnas/best", True, "emitted best test"), ("lissnas_topk/mean", True, "own top-K mean test"),
           ("down100/rea/shrunk", False, "REA inside +100: regret"))


def load(path: str) -> dict[tuple, dict]:
    """Return rows keyed by (dataset, budget, seed)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {(r["dataset"], r["budget"], r["seed"]): r for r in rows}


def cell(pairs: list[tuple[float, float]], higher_better: bool) -> str:
    """Return 'a +- sd vs b +- sd (better/tied/worse)' for A."""
    a, b = np.array(pairs).T
    d = a - b if higher_better else b - a
    return (f"{a.mean():.2f} ± {a.std():.2f} vs {b.mean():.2f} ± {b.std():.2f} "
            f"({(d > 1e-9).sum()}/{(abs(d) <= 1e-9).sum()}/{(d < -1e-9).sum()})")


def main() -> None:
    """Print the paired table of A (first file) vs B (second file)."""
    a, b = load(sys.argv[1]), load(sys.argv[2])
    keys = sorted(a.keys() & b.keys(), key=str)
    print("| dataset | B | seeds | " + " | ".join(name for _, _, name in COLUMNS) + " |")
    print("|---|---|---|" + "---|" * len(COLUMNS))
    for dataset, budget in dict.fromkeys((k[0], k[1]) for k in keys):
        group = [k for k in keys if k[:2] == (dataset, budget)]
        cells = [cell([(a[k][c], b[k][c]) for k in group if c in a[k] and c in b[k]], hb) for c, hb, _ in COLUMNS]
        print(f"| {dataset} | {budget} | {len(group)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
