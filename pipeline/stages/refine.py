"""Stage ``refine`` (baselines ``op_pruning`` and ``regnet``): restrict options per decision.

Both see only the evaluated archs that lie inside the current restriction (a product of allowed
options per decision), and both need a categorical space.

- ``op_pruning`` (ABS-style, Hu et al. 2020): rank each decision's options by the mean score of
  the archs using them and drop the worst option of every decision with more than one left.
- ``regnet`` (Radosavovic et al. 2020): for each decision, keep the options whose mean score is
  at least the mean of all current samples; apply only the single decision whose restriction
  raises the samples' mean score (the area under their EDF) the most, if any does.

Each round's restricted product space is written as one pocket (members enumerated; scores of
members never evaluated are null) and the restriction itself as ``restriction.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.config.stages import RefineCfg
from pipeline.context import StageContext
from pipeline.errors import ConfigError
from pipeline.stages.pockets import make_pocket, save_round
from spaces.base import CategoricalSpace

NEEDS, MAKES = ("scores",), ("pockets", "restriction")


Cfg = RefineCfg  # declared in pipeline/config/stages.py (light: read before composing)


def current_restriction(ctx: StageContext) -> list[tuple[str, ...]]:
    """Return the restriction left by the previous round (the full space in round 0)."""
    space = categorical(ctx)
    if ctx.round > 0 and ctx.has("restriction", ctx.round - 1):
        return space.restrict(ctx.load("restriction", ctx.round - 1)["allowed"])
    return list(space.options)


def categorical(ctx: StageContext) -> CategoricalSpace:
    """Return the space, or raise when it has no per-decision options to restrict."""
    if not isinstance(ctx.space, CategoricalSpace):
        raise ConfigError(f"shrink method needs a categorical space (per-decision options); {ctx.space.name} is not")
    return ctx.space


Allowed = list[tuple[str, ...]]


def inside(rows: dict[str, dict[str, Any]], space: CategoricalSpace, allowed: Allowed) -> tuple[np.ndarray, np.ndarray]:
    """Return (codes, scores) of the evaluated archs that lie inside ``allowed``."""
    archs = [space.from_str(a) for a in rows]
    values = [float(row["score"]) for row in rows.values()]
    # Failed or over-budget archs (score -inf) say nothing about an option's quality.
    keep = [i for i, arch in enumerate(archs)
            if np.isfinite(values[i]) and all(o in opts for o, opts in zip(arch, allowed, strict=True))]
    scores = np.array([values[i] for i in keep])
    return space.codes([archs[i] for i in keep]), scores


def option_means(codes: np.ndarray, scores: np.ndarray, decision: int, options: tuple[str, ...],
                 all_options: tuple[str, ...]) -> dict[str, float]:
    """Return the mean score of the samples using each allowed option (NaN when unseen)."""
    index = {o: i for i, o in enumerate(all_options)}
    return {o: float(scores[codes[:, decision] == index[o]].mean()) if np.any(codes[:, decision] == index[o])
            else float("nan") for o in options}


def prune_ops(space: CategoricalSpace, allowed: Allowed, codes: np.ndarray, scores: np.ndarray) -> Allowed:
    """Drop the worst-ranked option of every decision that still has more than one."""
    out = []
    for d, opts in enumerate(allowed):
        means = option_means(codes, scores, d, opts, space.options[d])
        # Unseen options rank last: nothing supports keeping them.
        worst = min(opts, key=lambda o: (np.nan_to_num(means[o], nan=-np.inf), o))
        out.append(tuple(o for o in opts if o != worst) if len(opts) > 1 else opts)
    return out


def regnet_step(space: CategoricalSpace, allowed: Allowed, codes: np.ndarray, scores: np.ndarray) -> Allowed:
    """Restrict the one decision whose better-than-average options raise the mean score most."""
    best_gain, best = 0.0, allowed
    for d, opts in enumerate(allowed):
        means = option_means(codes, scores, d, opts, space.options[d])
        keep = tuple(o for o in opts if means[o] >= scores.mean())
        if not keep or keep == opts:
            continue
        index = [space.options[d].index(o) for o in keep]
        gain = float(scores[np.isin(codes[:, d], index)].mean() - scores.mean())
        if gain > best_gain:
            best_gain, best = gain, [keep if i == d else o for i, o in enumerate(allowed)]
    return best


def scores_of(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Return arch -> search score of evaluated rows."""
    return {arch: float(row["score"]) for arch, row in rows.items()}


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Refine the restriction once, save it and its enumerated space as this round's pocket."""
    space = categorical(ctx)
    allowed = current_restriction(ctx)
    rows = ctx.evaluated()
    codes, scores = inside(rows, space, allowed)
    size = int(np.prod([len(o) for o in allowed]))
    if size > cfg.target_size and len(scores):
        step = prune_ops if cfg.rule == "op_pruning" else regnet_step
        allowed = step(space, allowed, codes, scores)
    new_size = int(np.prod([len(o) for o in allowed]))
    ctx.save("restriction", {"allowed": [list(o) for o in allowed], "size": new_size})
    if new_size > cfg.max_members:
        summary = save_round(ctx, [], scores_of(rows), float("nan"), 0)
    else:
        members = [m for m in (space.to_str(a) for a in space.enumerate_restricted(allowed)) if ctx.feasible(m)]
        known = {a: float(rows[a]["score"]) if a in rows and np.isfinite(float(rows[a]["score"])) else None
                 for a in members}
        ranked = sorted(members, key=lambda a: (known[a] is None, -(known[a] or 0.0), a))
        pocket = [make_pocket(0, ranked[0], ranked, known, radius=0)] if ranked else []
        summary = save_round(ctx, pocket, scores_of(rows), float("nan"), 0)
    return {**summary, "restricted_size": float(new_size),
            "converged": float(new_size == size or new_size <= cfg.target_size)}
