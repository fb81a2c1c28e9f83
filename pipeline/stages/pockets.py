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

from pipeline.context import StageContext
from pipeline.stages.graph import load_graph

NEEDS, MAKES = ("scores", "graph"), ("pockets",)


@dataclass(frozen=True)
class Cfg:
    """Knobs of the pockets stage."""

    radius: int  # a pocket holds good archs within this many graph hops of its seed
    good_quantile: float  # "good" = score >= this quantile of the round-0 uniform sample
    max_pockets: int  # at most this many pockets per round
    min_pocket_size: int  # a locality smaller than this is not (yet) a pocket


def threshold(ctx: StageContext, quantile: float) -> float:
    """Return the good-score threshold from the round-0 uniform sample."""
    uniform = [row["score"] for row in ctx.load("scores", 0) if row["origin"] == "uniform"]
    return float(np.quantile(np.asarray(uniform, dtype=float), quantile))


def extract_pockets(graph: nx.Graph, scores: dict[str, float], cut: float, cfg: Cfg) -> list[dict[str, Any]]:
    """Greedily grow disjoint pockets from the best unclaimed good archs."""
    ranked = sorted((a for a in graph if scores[a] >= cut), key=lambda a: (-scores[a], a))
    good = graph.subgraph(ranked)
    claimed: set[str] = set()
    pockets: list[dict[str, Any]] = []
    for seed in ranked:
        if len(pockets) == cfg.max_pockets:
            break
        if seed in claimed:
            continue
        region = nx.single_source_shortest_path_length(good, seed, cutoff=cfg.radius)
        members = sorted((a for a in region if a not in claimed), key=lambda a: (-scores[a], a))
        if len(members) < cfg.min_pocket_size:
            continue
        claimed.update(members)
        pockets.append(make_pocket(len(pockets), seed, members, scores, cfg.radius))
    return pockets


def make_pocket(index: int, seed: str, members: list[str], scores: dict[str, float | None], radius: int) -> dict[str, Any]:
    """Return one pocket record (a member's score is None when it was never evaluated)."""
    return {
        "id": index,
        "seed": seed,
        "seed_score": scores.get(seed),
        "radius": radius,
        "members": [{"arch": a, "score": scores.get(a)} for a in members],
    }


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


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Extract this round's pockets and save them with their summary."""
    scores = {arch: float(row["score"]) for arch, row in ctx.evaluated().items()}
    cut = threshold(ctx, cfg.good_quantile)
    return save_round(ctx, extract_pockets(load_graph(ctx.load("graph")), scores, cut, cfg), scores, cut, cfg.radius)
