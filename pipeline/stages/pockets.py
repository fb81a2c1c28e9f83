"""Stage ``pockets``: carve well-performing, connected localities out of the graph (LISSNAS).

An architecture is *good* when its score reaches the ``good_quantile`` of the round-0 uniform
sample (an unbiased view of the whole space, unlike later rounds, which are biased towards
pockets). Seeds are taken greedily by score; a seed's pocket is every good arch within
``radius`` hops of it in the good-only subgraph that no better seed has claimed, so pockets are
disjoint regions and the union stays diverse.

``region`` decides what a pocket stands for in the emitted space:

- ``surrogate`` (default): the pocket seeds' neighbourhoods (every arch within ``radius``
  single-decision changes, ``pool_per_seed`` at most per hop level) are rated by a surrogate
  fitted on every score so far; the ``target_size`` best by estimate (the observed score of an
  evaluated arch, the surrogate's mean otherwise) form the space, each in the pocket of the
  nearest seed. Unevaluated members carry their predicted score and uncertainty, so a
  downstream searcher has unexplored, likely-good archs left to find.
- ``members``: exactly the evaluated good archs of each pocket.
- ``ball``: every arch within ``radius`` of the seed (categorical spaces, no resource budget).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np

from pipeline import locality
from pipeline.config.stages import PocketsCfg
from pipeline.constraints import Constraints
from pipeline.context import StageContext
from pipeline.errors import ConfigError
from pipeline.locality import LocalityGraph
from pipeline.stages.graph import load_locality
from pipeline.surrogate import Surrogate, SurrogateCfg
from spaces.base import CategoricalSpace, SearchSpace

REGIONS = ("surrogate", "members", "ball")

NEEDS, MAKES = ("scores", "graph"), ("pockets",)


Cfg = PocketsCfg  # declared in pipeline/config/stages.py (light: read before composing)


def threshold(ctx: StageContext, quantile: float) -> float:
    """Return the good-score threshold from the round-0 uniform sample."""
    uniform = [row["score"] for row in ctx.load("scores", 0) if row["origin"] == "uniform"]
    return float(np.quantile(np.asarray(uniform, dtype=float), quantile))


def extract_pockets(graph: nx.Graph | LocalityGraph, scores: dict[str, float], cut: float,
                    cfg: Cfg) -> list[dict[str, Any]]:
    """Greedily grow disjoint pockets from the best unclaimed good archs (bulk, on the CSR graph)."""
    if isinstance(graph, nx.Graph):
        graph = LocalityGraph.from_networkx(graph)
    values = np.array([scores[a] for a in graph.names], dtype=float)
    found = locality.extract_pockets(graph, values, cut, cfg.radius, cfg.max_pockets, cfg.min_pocket_size)
    return [make_pocket(i, seed, members, scores, cfg.radius, cfg.region)
            for i, (seed, members) in enumerate(locality.pocket_records(graph, found))]


def make_pocket(index: int, seed: str, members: list[str], scores: dict[str, float | None], radius: int,
                region: str = "members", predictions: dict[str, tuple[float, float]] | None = None) -> dict[str, Any]:
    """Return one pocket record (a member's score is None when it was never evaluated)."""
    record = {
        "id": index,
        "seed": seed,
        "seed_score": scores.get(seed),
        "radius": radius,
        "members": [_member(a, scores.get(a), (predictions or {}).get(a)) for a in members],
    }
    return {**record, "region": region} if region == "ball" else record


def _member(arch: str, score: float | None, prediction: tuple[float, float] | None) -> dict[str, Any]:
    """Return one member record; an unevaluated member carries the surrogate's mean and spread."""
    if prediction is None:
        return {"arch": arch, "score": score}
    return {"arch": arch, "score": score, "predicted": prediction[0], "uncertainty": prediction[1]}


def target_size(space: SearchSpace, cfg: Cfg) -> int:
    """Return the emitted size: ``target_fraction`` of the space when set, else ``target_size``."""
    if cfg.target_fraction > 0:
        return max(1, math.ceil(cfg.target_fraction * space.size()))
    return cfg.target_size


def neighbourhood(space: SearchSpace, seed: str, radius: int, cap: int, rng: np.random.Generator,
                  feasible: Callable[[str], bool]) -> dict[str, int]:
    """Return the feasible archs within ``radius`` single-decision changes of ``seed`` -> hop count.

    A hop level larger than ``cap`` is cut to a uniform random subset, so balls in a 1e19 space
    stay a bounded candidate pool.
    """
    hops = {seed: 0}
    frontier = [seed]
    for hop in range(1, radius + 1):
        found = dict.fromkeys(space.to_str(n) for a in frontier for n in space.neighbors(space.from_str(a)))
        fresh = [a for a in found if a not in hops]
        # Walk the level in random order and keep the first `cap` feasible archs: a uniform subset
        # of the feasible level, at the cost of checking only about `cap` archs' budgets.
        order = rng.permutation(len(fresh)) if len(fresh) > cap else range(len(fresh))
        level = list(itertools.islice((fresh[i] for i in order if feasible(fresh[i])), cap))
        hops.update(dict.fromkeys(level, hop))
        frontier = level
    return hops


def latent_neighbourhood(space: SearchSpace, seed: str, radius: int, cap: int, rng: np.random.Generator,
                         feasible: Callable[[str], bool], latent: Any) -> dict[str, float]:
    """Return as many feasible archs as ``seed``'s ``radius``-change neighbourhood holds, nearest in latent space first.

    Value = rank by latent distance (0 = the seed), so a member joins the seed it is nearest to.
    """
    size = len(neighbourhood(space, seed, radius, cap, rng, feasible))
    near = latent.nearest(seed, size - 1, set(), feasible, rng)
    return {seed: 0.0, **{a: float(rank + 1) for rank, a in enumerate(near)}}


def fill_pockets(space: SearchSpace, seeds: list[str], scores: dict[str, float], radius: int, size: int,
                 rng: np.random.Generator, feasible: Callable[[str], bool] = lambda a: True, cap: int = 2000,
                 trees: int = 100, latent: Any = None, features: dict[str, Any] | None = None,
                 min_size: int = 1, optimism: float = 0.0) -> list[dict[str, Any]]:
    """Return pockets holding the ``size`` best-estimated archs around ``seeds`` (best seed first).

    Estimate = observed score when evaluated, the surrogate's mean (+ ``optimism`` x its spread)
    otherwise; a member joins the pocket of the seed it is fewest hops from (the better seed on
    ties). With ``latent`` (the learned locality), a seed's neighbourhood is the same number of
    archs, nearest to it in latent space. A seed that would keep fewer than ``min_size`` archs
    (``min_pocket_size``) keeps none: its places go to the next best estimates of the other pockets.
    """
    home: dict[str, tuple[int, float]] = {}
    for index, seed in enumerate(seeds):
        near = (latent_neighbourhood(space, seed, radius, cap, rng, feasible, latent) if latent is not None
                else neighbourhood(space, seed, radius, cap, rng, feasible))
        for arch, hop in near.items():
            if arch not in home or hop < home[arch][1]:
                home[arch] = (index, hop)
    pool = list(home)
    unseen = [a for a in pool if a not in scores]
    predictions: dict[str, tuple[float, float]] = {}
    if unseen:
        known = list(scores)
        model = Surrogate(space, SurrogateCfg(trees=trees), int(rng.integers(2**31)), **(features or {}))
        mean, spread = model.fit(known, [scores[a] for a in known]).predict(unseen)
        predictions = {a: (float(m), float(s)) for a, m, s in zip(unseen, mean, spread, strict=True)}
    # optimism > 0 favours archs the surrogate is unsure of (upper confidence bound): a transfer
    # target may prize what the source's evaluations never pinned down.
    estimate = {a: scores[a] if a in scores else predictions[a][0] + optimism * predictions[a][1] for a in pool}
    ranked = [a for a in sorted(pool, key=lambda a: (-estimate[a], a)) if np.isfinite(estimate[a])]
    dropped: set[int] = set()
    while True:
        grouped: dict[int, list[str]] = {}
        for arch in [a for a in ranked if home[a][0] not in dropped][:size]:
            grouped.setdefault(home[arch][0], []).append(arch)
        small = {k for k, members in grouped.items() if len(members) < min_size}
        if not small or len(small) == len(grouped):  # every pocket small: keep them rather than emit nothing
            break
        dropped |= small
    return [make_pocket(i, seeds[k], grouped[k], scores, radius, "members", predictions)
            for i, k in enumerate(sorted(grouped))]


def region_size(space: SearchSpace, pockets: list[dict[str, Any]]) -> int:
    """Return the exact number of archs the pockets stand for (whole balls included)."""
    from spaces.regions import BallUnion

    listed = {m["arch"] for p in pockets for m in p["members"]}
    balls = [p for p in pockets if p.get("region") == "ball"]
    if not balls:
        return len(listed)
    union = BallUnion(space, [space.from_str(p["seed"]) for p in balls], [p["radius"] for p in balls])
    return union.size() + sum(space.from_str(a) not in union for a in listed)


def summarize(pockets: list[dict[str, Any]], scores: dict[str, float], space: SearchSpace) -> dict[str, float]:
    """Return the per-round summary every method reports under the same names."""
    members = {m["arch"]: m["score"] for p in pockets for m in p["members"]}
    known = [s for s in members.values() if s is not None]
    finite = sorted((s for s in scores.values() if np.isfinite(s)), reverse=True)
    return {
        "pockets": float(len(pockets)),
        "shrunk_size": float(region_size(space, pockets)),
        "evaluated_members": float(len(known)),
        "top10_mean": float(np.mean(finite[:10])) if finite else float("nan"),
        "mean_pocket_score": float(np.mean(known)) if known else float("nan"),
        "best_pocket_score": max(known, default=float("nan")),
        "best_overall": max(scores.values(), default=float("nan")),
    }


def save_round(ctx: StageContext, pockets: list[dict[str, Any]], scores: dict[str, float], cut: float,
               radius: int) -> dict[str, float]:
    """Save this round's pockets (the method's current shrunk space) and return its summary."""
    summary = {**summarize(pockets, scores, ctx.space), "threshold": cut}
    ctx.save("pockets", {"round": ctx.round, "metric": ctx.evaluator.metric, "threshold": cut,
                         "radius": radius, "summary": summary, "pockets": pockets})
    return summary


def check_region(space: SearchSpace, constraints: Constraints, region: str) -> None:
    """Reject a pocket region the space or the constraints cannot honour."""
    if region not in REGIONS:
        raise ConfigError(f"shrink.pockets.region={region!r} is not one of {', '.join(REGIONS)}")
    if region == "ball" and not isinstance(space, CategoricalSpace):
        raise ConfigError(f"shrink.pockets.region=ball needs a categorical space; {space.name} pockets must list "
                          "their members (shrink.pockets.region=members)")
    if region == "ball" and constraints.active:
        raise ConfigError(f"shrink.pockets.region=ball would admit unevaluated archs over the budget ({constraints}); "
                          "use shrink.pockets.region=members with constraints")


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Extract this round's pockets and save them with their summary."""
    check_region(ctx.space, ctx.constraints, cfg.region)
    scores = {arch: float(row["score"]) for arch, row in ctx.evaluated().items()}
    cut = threshold(ctx, cfg.good_quantile)
    found = extract_pockets(load_locality(ctx.load("graph")), scores, cut, cfg)
    if cfg.region == "surrogate" and ctx.round > 0:
        seeds = [p["seed"] for p in found] or [a for a in sorted(scores, key=lambda a: (-scores[a], a))[:1]]
        found = fill_pockets(ctx.space, seeds, scores, cfg.radius, target_size(ctx.space, cfg), ctx.rng,
                             ctx.feasible, cfg.pool_per_seed, cfg.trees, ctx.latent if ctx.uses_latent() else None,
                             ctx.surrogate_features(), cfg.min_pocket_size, cfg.optimism)
    if ctx.constraints.active:  # what each pocket costs, on every budgeted measure: the user's view of its members
        for pocket in found:
            pocket["costs"] = cost_ranges(ctx, [m["arch"] for m in pocket["members"]])
    return save_round(ctx, found, scores, cut, cfg.radius)


def cost_ranges(ctx: StageContext, archs: list[str]) -> dict[str, list[float]]:
    """Return budgeted cost -> [min, max] over ``archs`` (flops, params, latency_<device>)."""
    costs = [ctx.evaluator.costs(ctx.space.from_str(a)) for a in archs]
    return {k: [float(min(c[k] for c in costs)), float(max(c[k] for c in costs))] for k in ctx.constraints.bounds()}
