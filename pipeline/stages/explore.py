"""Stage ``explore``: re-seed from the last pockets and propose their unexplored neighbours.

Seeds are taken round-robin across pockets (best unexplored member of each pocket in turn) so
every locality keeps being explored, not only the best one. Before any pocket exists (after
round 0) the best good archs of the sample are the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import numpy as np

from pipeline.context import StageContext

NEEDS, MAKES = ("pockets", "scores"), ("proposals",)


@dataclass(frozen=True)
class Cfg:
    """Knobs of the explore stage."""

    seeds_per_round: int  # archs whose localities are explored this round
    neighbors_per_seed: int  # unevaluated neighbours evaluated per seed (random subset if more)
    fresh_samples: int  # extra uniform samples per round, keeping some global exploration


def seed_order(previous: dict[str, Any], evaluated: dict[str, dict[str, Any]]) -> list[str]:
    """Return candidate seeds: pocket members round-robin by rank, else the best good archs."""
    columns = [[m["arch"] for m in p["members"]] for p in previous["pockets"]]
    order = [a for rank in zip_longest(*columns) for a in rank if a is not None]
    if not order:
        good = [a for a, row in evaluated.items() if row["score"] >= previous["threshold"]]
        order = sorted(good, key=lambda a: (-evaluated[a]["score"], a))
    return order


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Propose the unevaluated neighbours of this round's seeds, then fresh uniform samples."""
    evaluated = ctx.evaluated()
    taken = set(evaluated)
    rows: list[dict[str, Any]] = []
    seeds = 0
    for seed in seed_order(ctx.load("pockets", ctx.round - 1), evaluated):
        if seeds == cfg.seeds_per_round:
            break
        fresh = _unexplored(ctx, seed, taken)
        if not fresh:
            continue
        seeds += 1
        if len(fresh) > cfg.neighbors_per_seed:
            pick = np.sort(ctx.rng.choice(len(fresh), cfg.neighbors_per_seed, replace=False))
            fresh = [fresh[i] for i in pick]
        taken.update(fresh)
        rows += [{"arch": a, "origin": seed} for a in fresh]
    uniform = ctx.space.sample_unique(cfg.fresh_samples, ctx.rng, exclude=taken)
    rows += [{"arch": ctx.space.to_str(a), "origin": "uniform"} for a in uniform]
    ctx.save("proposals", rows)
    return {"seeds": float(seeds), "proposed": float(len(rows))}


def _unexplored(ctx: StageContext, seed: str, taken: set[str]) -> list[str]:
    """Return ``seed``'s neighbours (as strings) not yet evaluated or proposed."""
    names = (ctx.space.to_str(n) for n in ctx.space.neighbors(ctx.space.from_str(seed)))
    return [n for n in names if n not in taken and ctx.feasible(n)]
