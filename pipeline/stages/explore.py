"""Stage ``explore``: propose unevaluated neighbours of the best archs for the next evaluations.

``acquisition=ucb`` (default): ``mutation_fraction`` of the ``batch_size`` evaluations go to
REA-style children (a random unevaluated neighbour of the best of 10 random archs among the 50
latest: REA's spread, which the emitted region needs). For the rest, the evaluated archs are
grouped into up to ``explore_pockets``
localities (greedily, best first: an arch farther than ``radius`` from every pocket seed seeds a
new pocket, otherwise it joins the first pocket within reach). Each pocket gets an equal share
of the remaining evaluations; its candidates are the unevaluated, feasible neighbours of
its ``seeds_per_pocket`` best archs that still have any (an exhausted neighbourhood passes the turn
to the next arch of the locality), ranked by a surrogate (``pipeline/surrogate.py``) fitted
on every score so far: mean + ``kappa`` x spread (an upper confidence bound). The locality is
the candidate set (single-decision changes of proven archs, where structurally close archs
perform alike); the surrogate decides which of them deserve an evaluation; the pockets keep
several good regions informed, which is what the emitted space is carved from (chasing only
the single best region leaves the surrogate blind in the others).

``acquisition=random``: the original rule; seeds round-robin across the last round's pockets,
``neighbors_per_seed`` random unevaluated neighbours each.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import numpy as np

from pipeline.config.stages import ExploreCfg
from pipeline.context import StageContext
from pipeline.surrogate import Surrogate, SurrogateCfg
from spaces.base import SearchSpace

NEEDS, MAKES = ("pockets", "scores"), ("proposals",)


Cfg = ExploreCfg  # declared in pipeline/config/stages.py (light: read before composing)


def seed_order(previous: dict[str, Any], evaluated: dict[str, dict[str, Any]]) -> list[str]:
    """Return candidate seeds: pocket members round-robin by rank, else the best good archs."""
    columns = [[m["arch"] for m in p["members"] if m.get("score") is not None] for p in previous["pockets"]]
    order = [a for rank in zip_longest(*columns) for a in rank if a is not None]
    if not order:
        good = [a for a, row in evaluated.items() if row["score"] >= previous["threshold"]]
        order = sorted(good, key=lambda a: (-evaluated[a]["score"], a))
    return order


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Propose neighbours of this round's seeds (by acquisition), then fresh uniform samples."""
    evaluated = ctx.evaluated()
    taken = set(evaluated)
    rows = _by_ucb(ctx, cfg, evaluated, taken) if cfg.acquisition == "ucb" else _by_random(ctx, cfg, evaluated, taken)
    seeds = len({r["origin"] for r in rows})
    taken.update(r["arch"] for r in rows)
    uniform = ctx.space.sample_unique(cfg.fresh_samples, ctx.rng, exclude=taken)
    rows += [{"arch": ctx.space.to_str(a), "origin": "uniform"} for a in uniform]
    ctx.save("proposals", rows)
    return {"seeds": float(seeds), "proposed": float(len(rows))}


def best_archs(evaluated: dict[str, dict[str, Any]], n: int) -> list[str]:
    """Return the ``n`` best evaluated archs with a finite score (ties by string)."""
    finite = [a for a, row in evaluated.items() if np.isfinite(row["score"])]
    return sorted(finite, key=lambda a: (-evaluated[a]["score"], a))[:n]


def localities(space: SearchSpace, ranked: list[str], pockets: int, radius: int) -> list[list[str]]:
    """Group best-first archs into at most ``pockets`` groups of archs within ``radius`` of the group's seed."""
    groups: list[list[str]] = []
    parsed = {}
    for arch in ranked:
        parsed[arch] = space.from_str(arch)
        home = next((g for g in groups if space.distance(parsed[g[0]], parsed[arch]) <= radius), None)
        if home is not None:
            home.append(arch)
        elif len(groups) < pockets:
            groups.append([arch])
    return groups


def _by_ucb(ctx: StageContext, cfg: Cfg, evaluated: dict[str, dict[str, Any]], taken: set[str]) -> list[dict[str, Any]]:
    """Give each locality an equal share of the batch: its best neighbours by mean + kappa * spread."""
    archs = list(evaluated)
    if sum(np.isfinite(evaluated[a]["score"]) for a in archs) < 2:
        return _by_random(ctx, cfg, evaluated, taken)
    seed = int(ctx.rng.integers(2**31))
    model = Surrogate(ctx.space, SurrogateCfg(trees=cfg.trees), seed, **ctx.surrogate_features())
    model.fit(archs, [evaluated[a]["score"] for a in archs])
    groups = localities(ctx.space, best_archs(evaluated, len(evaluated)), cfg.explore_pockets, cfg.radius)
    chosen = set(taken)
    rows = _mutations(ctx, evaluated, chosen, round(cfg.batch_size * cfg.mutation_fraction))
    quota = -(-(cfg.batch_size - len(rows)) // max(1, len(groups)))
    for group in groups:
        origin: dict[str, str] = {}
        parents = 0
        for parent in group:  # the best archs of the locality that still have unevaluated neighbours
            fresh = [n for n in _unexplored(ctx, parent, chosen) if n not in origin]
            origin.update(dict.fromkeys(fresh, parent))
            parents += bool(fresh)
            if parents == cfg.seeds_per_pocket:
                break
        candidates = list(origin)
        mean, spread = model.predict(candidates)
        ucb = mean + cfg.kappa * spread
        for i in sorted(range(len(candidates)), key=lambda i: (-ucb[i], candidates[i]))[:quota]:
            rows.append({"arch": candidates[i], "origin": origin[candidates[i]], "predicted": float(mean[i]),
                         "uncertainty": float(spread[i])})
            chosen.add(candidates[i])
    rows = rows[: cfg.batch_size]
    return rows or _by_random(ctx, cfg, evaluated, taken)


def _mutations(ctx: StageContext, evaluated: dict[str, dict[str, Any]], chosen: set[str], n: int,
               population: int = 50, tournament: int = 10) -> list[dict[str, Any]]:
    """Propose ``n`` REA-style children: a random unevaluated neighbour of the best of ``tournament``
    random archs among the ``population`` latest evaluated (spreads evaluations like REA does)."""
    recent = [a for a in evaluated if np.isfinite(evaluated[a]["score"])][-population:]
    rows: list[dict[str, Any]] = []
    for _ in range(n if recent else 0):
        picks = ctx.rng.choice(len(recent), min(tournament, len(recent)), replace=False)
        parent = max((recent[i] for i in picks), key=lambda a: (evaluated[a]["score"], a))
        options = _unexplored(ctx, parent, chosen)
        if options:
            child = options[int(ctx.rng.integers(len(options)))]
            chosen.add(child)
            rows.append({"arch": child, "origin": parent})
    return rows


def _by_random(ctx: StageContext, cfg: Cfg, evaluated: dict[str, dict[str, Any]], taken: set[str]) -> list[dict[str, Any]]:
    """Propose random unevaluated neighbours of pocket seeds taken round-robin (the original rule)."""
    rows: list[dict[str, Any]] = []
    seeds = 0
    taken = set(taken)
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
    return rows


def _unexplored(ctx: StageContext, seed: str, taken: set[str]) -> list[str]:
    """Return ``seed``'s neighbours (as strings) not yet evaluated or proposed.

    With the learned locality, the neighbours are the archs nearest to ``seed`` in latent space,
    as many as it has single-change neighbours (the same exploration width as the space's own).
    """
    neighbours = ctx.space.neighbors(ctx.space.from_str(seed))
    if ctx.uses_latent():
        return ctx.latent.nearest(seed, len(neighbours), taken, ctx.feasible, ctx.rng)
    names = (ctx.space.to_str(n) for n in neighbours)
    return [n for n in names if n not in taken and ctx.feasible(n)]
