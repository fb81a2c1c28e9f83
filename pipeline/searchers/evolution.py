"""Regularized evolution (REA; Real et al., AAAI 2019), through the domain contract.

A population of ``population`` archs (uniform samples); each step picks the best of
``tournament`` random members as parent, evaluates one random neighbour of it (a single
decision changed, inside the domain), appends the child and removes the oldest member.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from pipeline.searchers.base import BudgetSpent, Oracle


def rea(domain, oracle: Oracle, rng: np.random.Generator, population: int = 50, tournament: int = 10,
        initial: Sequence[str] = ()) -> Oracle:
    """Run REA until the oracle's budget is spent (or the domain is exhausted).

    ``initial`` archs (e.g. a source task's best, for a warm start) fill the population first, in order.
    """
    pop: deque[tuple[str, float]] = deque()
    stale = 0
    first = [a for a in dict.fromkeys(initial) if a in domain][:population]
    try:
        for arch in first:
            pop.append((arch, oracle(arch)))
        while len(pop) < population and stale < 20 * population:
            arch = domain.sample(rng)
            before = oracle.spent
            pop.append((arch, oracle(arch)))
            stale = 0 if oracle.spent > before else stale + 1
        while stale < 20 * max(1, oracle.budget):
            picks = rng.choice(len(pop), min(tournament, len(pop)), replace=False)
            parent = max((pop[i] for i in picks), key=lambda p: p[1])[0]
            options = domain.neighbors(parent)
            child = options[int(rng.integers(len(options)))] if options else domain.sample(rng)
            before = oracle.spent
            pop.append((child, oracle(child)))
            pop.popleft()
            stale = 0 if oracle.spent > before else stale + 1
    except BudgetSpent:
        pass
    return oracle
