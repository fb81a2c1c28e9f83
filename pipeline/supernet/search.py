"""Evolutionary search over a (shrunk) space with supernet fitness, and ranking correlations.

Evolution follows SPOS: a population of distinct archs, the best ``parents`` breed children by
mutation (each decision re-drawn with probability ``mutation_prob``) and uniform crossover; a
child counts only when it is a valid member of the searched region, else mutation falls back to a
random member neighbour or a fresh draw. Regions no larger than the budget are searched
exhaustively instead, which is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

from pipeline.config.stages import SubnetSearchCfg
from spaces.base import Arch, CategoricalSpace


def evolve(space: CategoricalSpace, draw: Callable[[np.random.Generator], Arch], inside: Callable[[Arch], bool],
           size: int, fitness: Callable[[Arch], float], cfg: SubnetSearchCfg,
           rng: np.random.Generator) -> tuple[Arch, float, list[dict[str, float]]]:
    """Return (best arch, its fitness, per-generation history) within the region ``inside``."""
    scored: dict[str, float] = {}

    def score(arch: Arch) -> float:
        key = space.to_str(arch)
        if key not in scored:
            scored[key] = fitness(arch)
        return scored[key]

    budget = cfg.population * (cfg.generations + 1)
    if size <= budget:  # small region: evaluate every member
        members = _distinct(draw, rng, size, space)
        for arch in members:
            score(arch)
        history = [{"generation": 0.0, "best": max(scored.values()), "evaluated": float(len(scored))}]
    else:
        population = _distinct(draw, rng, cfg.population, space)
        history = []
        for generation in range(cfg.generations + 1):
            ranked = sorted(population, key=lambda a: (-score(a), space.to_str(a)))
            history.append({"generation": float(generation), "best": score(ranked[0]), "evaluated": float(len(scored))})
            if generation == cfg.generations:
                break
            parents = ranked[:cfg.parents]
            children: dict[str, Arch] = {space.to_str(a): a for a in parents}
            for _ in range(20 * cfg.population):
                if len(children) >= cfg.population:
                    break
                if rng.random() < 0.5:
                    child = mutate(space, parents[int(rng.integers(len(parents)))], cfg.mutation_prob, inside, draw, rng)
                else:
                    a, b = (parents[int(i)] for i in rng.choice(len(parents), 2, replace=len(parents) < 2))
                    child = crossover(a, b, rng)
                if space.check(child) is None and inside(child):
                    children.setdefault(space.to_str(child), child)
            population = list(children.values())
    best = max(scored, key=lambda k: (scored[k], k))
    return space.from_str(best), scored[best], history


def _distinct(draw: Callable[[np.random.Generator], Arch], rng: np.random.Generator, n: int,
              space: CategoricalSpace) -> list[Arch]:
    """Draw up to ``n`` distinct archs."""
    found: dict[str, Arch] = {}
    for _ in range(50 * n):
        if len(found) == n:
            break
        arch = draw(rng)
        found.setdefault(space.to_str(arch), arch)
    return list(found.values())


def mutate(space: CategoricalSpace, arch: Arch, prob: float, inside: Callable[[Arch], bool],
           draw: Callable[[np.random.Generator], Arch], rng: np.random.Generator) -> Arch:
    """Re-draw each decision with probability ``prob``; fall back to a member neighbour, then a fresh draw."""
    child = tuple(opts[int(rng.integers(len(opts)))] if rng.random() < prob else value
                  for value, opts in zip(arch, space.options, strict=True))
    if child != arch and space.check(child) is None and inside(child):
        return child
    near = [n for n in space.neighbors(arch) if inside(n)]
    return near[int(rng.integers(len(near)))] if near else draw(rng)


def crossover(a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
    """Take each decision from ``a`` or ``b`` with equal probability."""
    return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b, strict=True))


def rank_correlations(estimated: Sequence[float], reference: Sequence[float]) -> dict[str, float]:
    """Return Kendall's tau-b and Spearman's rho (NaN for fewer than 3 archs)."""
    if len(estimated) < 3:
        return {"kendall_tau": float("nan"), "spearman": float("nan")}
    return {"kendall_tau": float(stats.kendalltau(estimated, reference).statistic),
            "spearman": float(stats.spearmanr(estimated, reference).statistic)}
