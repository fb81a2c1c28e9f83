"""Quality, size and diversity metrics of a shrunk space, against ground truth when available.

Every metric takes plain values (arch strings, score dicts), so it works for any method's space.

- ``size`` |S| and ``fraction`` |S| / |F| of the full space F.
- ``best``/``mean``/``median`` ground-truth accuracy over S; ``full_mean`` over F.
- ``regret`` = max over F - max over S (0 when S holds the global optimum).
- ``recall_top{q}`` = |S ∩ top_q(F)| / |top_q(F)|, top_q(F) = the ceil(q|F|) best archs of F.
- ``kendall_tau`` between the search scores and the ground truth over S's evaluated members
  (scipy.stats.kendalltau, tau-b): how well the search signal orders the space it kept.
- ``shrink_index`` (this project's definition; the LISSNAS paper's exact formula was not
  available to us): ``SI = Q * R`` with quality gain ``Q = (mean_S - mean_F) / (max_F - mean_F)``
  (the share of the mean-to-best headroom closed; 1 only if every member is optimal, 0 for a
  random subset, negative when worse than random) and size reduction
  ``R = 1 - log|S| / log|F|`` (1 for a single arch, 0 for the full space). It rewards spaces
  that are both much smaller and better on average, and is comparable across spaces of
  different size.
- Diversity: ``pockets``; ``mean_distance`` = mean pairwise structural distance over S;
  ``op_entropy`` = mean over decisions of the entropy of the option distribution in S,
  normalised by log(#options) (1 = every option equally present, 0 = one option fixed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from spaces.base import CategoricalSpace, SearchSpace

TOP_FRACTIONS = (0.001, 0.01, 0.05)


def shrink_index(shrunk: Sequence[float], full: Sequence[float], shrunk_size: int, full_size: int) -> float:
    """Return Q * R (see the module docstring); NaN when undefined."""
    full_arr = np.asarray(full, dtype=float)
    headroom = full_arr.max() - full_arr.mean()
    if not len(shrunk) or headroom <= 0 or full_size <= 1:
        return float("nan")
    quality = (float(np.mean(shrunk)) - full_arr.mean()) / headroom
    reduction = 1.0 - math.log(max(shrunk_size, 1)) / math.log(full_size)
    return float(quality * reduction)


def recall_top(members: Iterable[str], truth: Mapping[str, float], fraction: float) -> float:
    """Return the share of the top ``fraction`` of the full space that ``members`` keeps."""
    k = max(1, math.ceil(fraction * len(truth)))
    top = set(sorted(truth, key=lambda a: (-truth[a], a))[:k])
    return len(top & set(members)) / k


def kendall_tau(estimated: Sequence[float], truth: Sequence[float]) -> float:
    """Return Kendall's tau-b of two paired score lists (NaN for fewer than 2 pairs)."""
    if len(estimated) < 2:
        return float("nan")
    return float(stats.kendalltau(estimated, truth).statistic)


def mean_distance(space: SearchSpace, members: Sequence[str]) -> float:
    """Return the mean pairwise structural distance among ``members``."""
    if len(members) < 2:
        return 0.0
    archs = [space.from_str(a) for a in members]
    if isinstance(space, CategoricalSpace):
        codes = space.codes(archs)
        # Per decision, pairs that differ = all pairs - pairs that agree; no pair loop needed.
        n = len(codes)
        differing = sum(n * n - np.sum(np.bincount(col) ** 2) for col in codes.T)
        return float(differing / (n * (n - 1)))
    pairs = [space.distance(a, b) for i, a in enumerate(archs) for b in archs[i + 1 :]]
    return float(np.mean(pairs))


def op_entropy(space: SearchSpace, members: Sequence[str]) -> float:
    """Return the mean normalised per-decision option entropy of ``members`` (NaN if not categorical)."""
    if not isinstance(space, CategoricalSpace) or not members:
        return float("nan")
    codes = space.codes([space.from_str(a) for a in members])
    values = []
    for col, options in zip(codes.T, space.options, strict=True):
        p = np.bincount(col, minlength=len(options)) / len(col)
        p = p[p > 0]
        values.append(float(-(p * np.log(p)).sum() / math.log(len(options))))
    return float(np.mean(values))


def space_metrics(space: SearchSpace, members: Sequence[str], pockets: int,
                  scores: Mapping[str, float] | None = None,
                  truth: Mapping[str, float] | None = None) -> dict[str, float]:
    """Return every metric of a shrunk space; ground-truth ones only when ``truth`` is given."""
    out = {"size": float(len(members)), "fraction": len(members) / space.size(), "pockets": float(pockets),
           "mean_distance": mean_distance(space, members), "op_entropy": op_entropy(space, members)}
    known = [a for a in members if a in (truth or {})]
    if truth is None or not known:
        return out
    # A partial table (e.g. a benchmark still being built) judges only the members it covers.
    out["gt_coverage"] = len(known) / len(members)
    members = known
    kept = np.array([truth[a] for a in members])
    full = np.fromiter(truth.values(), dtype=float)
    out.update({"gt_best": float(kept.max()), "gt_mean": float(kept.mean()), "gt_median": float(np.median(kept)),
                "gt_full_mean": float(full.mean()), "regret": float(full.max() - kept.max()),
                "shrink_index": shrink_index(kept, full, len(members), len(truth))})
    for fraction in TOP_FRACTIONS:
        out[f"recall_top{fraction * 100:g}pct"] = recall_top(members, truth, fraction)
    if scores:
        paired = [a for a in members if a in scores and math.isfinite(scores[a])]
        out["kendall_tau"] = kendall_tau([scores[a] for a in paired], [truth[a] for a in paired])
    return out
