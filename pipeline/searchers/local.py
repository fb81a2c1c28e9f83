"""Iterated local search (White et al., 2021, "Local search is state of the art for NAS benchmarks").

Start at a random arch; evaluate its whole neighbourhood (random order); move to the best
neighbour if it beats the current arch, else restart from a new random arch. On tabular NAS
benchmarks this simple loop matches or beats far more elaborate searchers.
"""

from __future__ import annotations

import numpy as np

from pipeline.searchers.base import BudgetSpent, Oracle


def local_search(domain, oracle: Oracle, rng: np.random.Generator) -> Oracle:
    """Run local search with random restarts until the oracle's budget is spent."""
    idle = 0
    try:
        current = domain.sample(rng)
        value = oracle(current)
        while idle < 50:
            before = oracle.spent
            nbrs = domain.neighbors(current)
            scored = [(oracle(n), n) for n in (nbrs[i] for i in rng.permutation(len(nbrs)))]
            best_value, best = max(scored, default=(-np.inf, current))
            if best_value > value:
                current, value = best, best_value
            else:
                current = _restart(domain, oracle, rng)
                value = oracle(current)
            idle = 0 if oracle.spent > before else idle + 1
    except BudgetSpent:
        pass
    return oracle


def _restart(domain, oracle: Oracle, rng: np.random.Generator, attempts: int = 200) -> str:
    """Return a random arch not yet scored (any arch when the domain seems exhausted)."""
    for _ in range(attempts):
        arch = domain.sample(rng)
        if arch not in oracle.cache:
            return arch
    return domain.sample(rng)
