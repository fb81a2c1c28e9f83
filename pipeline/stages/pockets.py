"""Stage ``pockets``: carve well-performing, connected localities out of the graph (LISSNAS).

An architecture is *good* when its score reaches the ``good_quantile`` of the round-0 uniform
sample (an unbiased view of the whole space, unlike later rounds, which are biased towards
pockets). Seeds are taken greedily by score; a seed's pocket is every good arch within
``radius`` hops of it in the good-only subgraph that no better seed has claimed, so pockets are
disjoint regions and the union stays diverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from pipeline import locality
from pipeline.constraints import Constraints
from pipeline.context import StageContext
from pipeline.errors import ConfigError
from pipeline.locality import LocalityGraph
from pipeline.stages.graph import load_locality
from spaces.base import CategoricalSpace, SearchSpace

NEEDS, MAKES = ("scores", "graph"), ("pockets",)


@dataclass(frozen=True)
class Cfg:
    """Knobs of the pockets stage."""

    radius: int  # a pocket holds good archs within this many graph hops of its seed
    good_quantile: float  # "good" = score >= this quantile of the round-0 uniform sample
    max_pockets: int  # at most this many pockets per round
    min_pocket_size: int  # a locality smaller than this is not (yet) a pocket
    region: str = "members"  # emitted pocket = its evaluated members, or "ball": every arch within radius


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
                region: str = "members") -> dict[str, Any]:
    """Return one pocket record (a member's score is None when it was never evaluated)."""
    record = {
        "id": index,
        "seed": seed,
        "seed_score": scores.get(seed),
        "radius": radius,
        "members": [{"arch": a, "score": scores.get(a)} for a in members],
    }
    return {**record, "region": region} if region != "members" else record


def summarize(pockets: list[dict[str, Any]], scores: dict[str, float]) -> dict[str, float]:
    """Return the per-round summary every method reports under the same names."""
    members = {m["arch"]: m["score"] for p in pockets for m in p["members"]}
    known = [s for s in members.values() if s is not None]
    return {
        "pockets": float(len(pockets)),
        "shrunk_size": float(len(members)),
        "mean_pocket_score": float(np.mean(known)) if known else float("nan"),
        "best_pocket_score": max(known, default=float("nan")),
        "best_overall": max(scores.values(), default=float("nan")),
    }


def save_round(ctx: StageContext, pockets: list[dict[str, Any]], scores: dict[str, float], cut: float,
               radius: int) -> dict[str, float]:
    """Save this round's pockets (the method's current shrunk space) and return its summary."""
    summary = {**summarize(pockets, scores), "threshold": cut}
    ctx.save("pockets", {"round": ctx.round, "metric": ctx.evaluator.metric, "threshold": cut,
                         "radius": radius, "summary": summary, "pockets": pockets})
    return summary


def check_region(space: SearchSpace, constraints: Constraints, region: str) -> None:
    """Reject a pocket region the space or the constraints cannot honour."""
    if region not in ("members", "ball"):
        raise ConfigError(f"shrink.region={region!r} is not one of members, ball")
    if region == "ball" and not isinstance(space, CategoricalSpace):
        raise ConfigError(f"shrink.region=ball needs a categorical space; {space.name} pockets must list "
                          "their members (shrink.region=members)")
    if region == "ball" and constraints.active:
        raise ConfigError(f"shrink.region=ball would admit unevaluated archs over the budget ({constraints}); "
                          "use shrink.region=members with constraints")


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Extract this round's pockets and save them with their summary."""
    check_region(ctx.space, ctx.constraints, cfg.region)
    scores = {arch: float(row["score"]) for arch, row in ctx.evaluated().items()}
    cut = threshold(ctx, cfg.good_quantile)
    return save_round(ctx, extract_pockets(load_locality(ctx.load("graph")), scores, cut, cfg), scores, cut, cfg.radius)
