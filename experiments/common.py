"""What the experiment scripts share: the seed list syntax and composing the pipeline's config."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_seeds(text: str) -> list[int]:
    """Parse '0-9' or '0,3,5' into a list of seeds."""
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",")]


def compose_cfg(overrides: list[str]) -> Any:
    """Compose the pipeline config as `python -m pipeline` would (as its job sees it)."""
    from pipeline.cli import compose

    return compose("config", overrides, hydra_node=False)


def top_k(history: list[tuple[str, float]], k: int) -> list[str]:
    """Return the k best evaluated archs by search score."""
    return [a for a, _ in sorted(history, key=lambda h: (-h[1], h[0]))[:k]]


def picked_regret(scores: Mapping[str, float], truth: Mapping[str, float]) -> float:
    """Return the test regret of the arch with the best validation score."""
    arch = max(scores, key=lambda a: (scores[a], a))
    return float(max(truth.values()) - truth[arch])


def paired(rows: list[dict[str, Any]], a: str, b: str, higher_better: bool = True, tol: float = 1e-9) -> str:
    """Return 'mean_a ± std vs mean_b ± std (better/tied/worse)' over paired rows."""
    pairs = [(r[a], r[b]) for r in rows if a in r and b in r and np.isfinite(r[a]) and np.isfinite(r[b])]
    if not pairs:
        return "-"
    x, y = np.array(pairs).T
    d = (x - y) if higher_better else (y - x)
    return (f"{x.mean():.2f} ± {x.std():.2f} vs {y.mean():.2f} ± {y.std():.2f} "
            f"({int((d > tol).sum())}/{int((abs(d) <= tol).sum())}/{int((d < -tol).sum())})")
