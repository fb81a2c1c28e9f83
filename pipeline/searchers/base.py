"""What every searcher works through: a domain (full space or shrunk space) and a counting oracle.

A *domain* is the set a searcher may propose from: ``sample`` (uniform), ``neighbors`` (the
archs one decision away that are inside the domain), ``size`` and membership, all by arch
string. The *oracle* scores archs with the run's metric and counts evaluations exactly as the
pipeline does: an arch already scored (by the searcher, or known beforehand, e.g. the members
a shrinkage run evaluated) costs nothing; every new arch costs one evaluation, and none is
scored once the budget is spent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from spaces.base import SearchSpace
from spaces.shrunk import ShrunkSpace


class BudgetSpent(Exception):
    """Raised by the oracle when a new evaluation would exceed the budget."""


class FullDomain:
    """The whole base space, optionally cut to the archs a resource budget allows."""

    def __init__(self, space: SearchSpace, feasible: Callable[[str], bool] = lambda a: True) -> None:
        self.space, self.feasible = space, feasible

    def size(self) -> int:
        """Return the base space's size (feasibility is not counted)."""
        return self.space.size()

    def __contains__(self, arch: str) -> bool:
        return self.space.check(self.space.from_str(arch)) is None and self.feasible(arch)

    def sample(self, rng: np.random.Generator, attempts: int = 10_000) -> str:
        """Draw a feasible arch uniformly (rejection sampling)."""
        for _ in range(attempts):
            arch = self.space.to_str(self.space.canonical(self.space.sample(rng)))
            if self.feasible(arch):
                return arch
        raise ValueError(f"no feasible architecture of {self.space.name} in {attempts} draws; loosen the budget")

    def neighbors(self, arch: str) -> list[str]:
        """Return the feasible archs one decision away."""
        out = (self.space.to_str(n) for n in self.space.neighbors(self.space.from_str(arch)))
        return [a for a in out if self.feasible(a)]


class ShrunkDomain:
    """A shrunk space's members: neighbours are base-space neighbours that are members."""

    def __init__(self, shrunk: ShrunkSpace) -> None:
        self.shrunk, self.space = shrunk, shrunk.base

    def size(self) -> int:
        """Return the shrunk space's exact size."""
        return self.shrunk.size()

    def __contains__(self, arch: str) -> bool:
        return arch in self.shrunk

    def sample(self, rng: np.random.Generator) -> str:
        """Draw a member uniformly."""
        return self.space.to_str(self.shrunk.sample(rng))

    def neighbors(self, arch: str) -> list[str]:
        """Return the members one decision away."""
        out = (self.space.to_str(n) for n in self.space.neighbors(self.space.from_str(arch)))
        return [a for a in out if a in self.shrunk]


class MemberDomain:
    """A plain set of archs (e.g. a searcher's own top-K): uniform over the set, neighbours inside it."""

    def __init__(self, space: SearchSpace, members: list[str]) -> None:
        self.space, self.members = space, sorted(set(members))
        self._set = set(self.members)
        if not self.members:
            raise ValueError("a member domain needs at least one arch")

    def size(self) -> int:
        """Return the number of members."""
        return len(self.members)

    def __contains__(self, arch: str) -> bool:
        return arch in self._set

    def sample(self, rng: np.random.Generator) -> str:
        """Draw a member uniformly."""
        return self.members[int(rng.integers(len(self.members)))]

    def neighbors(self, arch: str) -> list[str]:
        """Return the members one decision away."""
        out = (self.space.to_str(n) for n in self.space.neighbors(self.space.from_str(arch)))
        return [a for a in out if a in self._set]


class BoxDomain:
    """The per-decision options of some archs (a bounding box, as syne-tune's BoundingBox transfer): their product."""

    def __init__(self, space: Any, archs: list[str]) -> None:
        codes = [space.from_str(a) for a in archs]
        self.space = space
        self.allowed = space.restrict([sorted({arch[i] for arch in codes}) for i in range(len(space.decisions))])

    def size(self) -> int:
        """Return the box's size (the product of the kept option counts)."""
        return int(np.prod([len(o) for o in self.allowed]))

    def __contains__(self, arch: str) -> bool:
        return all(o in opts for o, opts in zip(self.space.from_str(arch), self.allowed, strict=True))

    def sample(self, rng: np.random.Generator) -> str:
        """Draw an arch of the box uniformly."""
        return self.space.to_str(self.space.sample_restricted(self.allowed, rng))

    def neighbors(self, arch: str) -> list[str]:
        """Return the archs of the box one decision away."""
        out = (self.space.to_str(n) for n in self.space.neighbors(self.space.from_str(arch)))
        return [a for a in out if a in self]


class FeasibleDomain:
    """Any domain cut to the archs a resource budget allows (rejection sampling, filtered neighbours)."""

    def __init__(self, domain: Any, feasible: Callable[[str], bool]) -> None:
        self.domain, self.feasible = domain, feasible

    def size(self) -> int:
        """Return the uncut domain's size (the cut is not counted)."""
        return self.domain.size()

    def __contains__(self, arch: str) -> bool:
        return arch in self.domain and self.feasible(arch)

    def sample(self, rng: np.random.Generator, attempts: int = 20_000) -> str:
        """Draw a feasible arch of the domain uniformly."""
        for _ in range(attempts):
            arch = self.domain.sample(rng)
            if self.feasible(arch):
                return arch
        raise ValueError(f"no feasible arch of this domain in {attempts} draws; loosen the budget")

    def neighbors(self, arch: str) -> list[str]:
        """Return the feasible neighbours inside the domain."""
        return [a for a in self.domain.neighbors(arch) if self.feasible(a)]


class Oracle:
    """Scores archs, charging one evaluation per new arch; ``known`` scores are free."""

    def __init__(self, score: Callable[[str], float], budget: int, known: Mapping[str, float] | None = None,
                 score_many: Callable[[list[str]], list[float]] | None = None) -> None:
        self._score, self.budget = score, budget
        self._many = score_many  # scores a batch at once (e.g. through the run's executor, in parallel)
        self.cache: dict[str, float] = dict(known or {})
        self.history: list[tuple[str, float]] = []  # new evaluations, in order

    @property
    def spent(self) -> int:
        """Return the number of new evaluations so far."""
        return len(self.history)

    @property
    def left(self) -> int:
        """Return the evaluations still allowed."""
        return self.budget - self.spent

    def __call__(self, arch: str) -> float:
        """Return the score of ``arch``; raise BudgetSpent when it is new and nothing is left."""
        if arch in self.cache:
            return self.cache[arch]
        if self.left <= 0:
            raise BudgetSpent
        value = float(self._score(arch))
        self.cache[arch] = value
        self.history.append((arch, value))
        return value

    def many(self, archs: list[str]) -> list[float]:
        """Return the scores of ``archs``, the new ones scored in one batch; raise BudgetSpent when none is affordable.

        New archs beyond the remaining budget are not scored (their score is NaN); known ones are free.
        """
        new = list(dict.fromkeys(a for a in archs if a not in self.cache))[: max(0, self.left)]
        if not new and any(a not in self.cache for a in archs):
            raise BudgetSpent
        values = self._many(new) if self._many is not None else [self._score(a) for a in new]
        for arch, value in zip(new, values, strict=True):
            self.cache[arch] = float(value)
            self.history.append((arch, float(value)))
        return [self.cache.get(a, float("nan")) for a in archs]

    def best(self) -> tuple[str, float]:
        """Return the best-scoring arch seen (known ones included)."""
        arch = max(self.cache, key=lambda a: (self.cache[a], a))
        return arch, self.cache[arch]


def table_score(table: Mapping[str, Mapping[str, Any]], metric: str = "val_acc") -> Callable[[str], float]:
    """Return a score function that looks ``metric`` up in a benchmark table."""
    return lambda arch: float(table[arch][metric])


BatchScorer = Callable[[list[str]], list[float]]


def evaluator_oracle(evaluator: Any, executor: Any, budget: int, known: Mapping[str, float] | None = None,
                     wrap: Callable[[BatchScorer], BatchScorer] | None = None) -> Oracle:
    """Return an Oracle that scores archs with ``evaluator``, a batch at a time through ``executor`` (local or Ray).

    A failed evaluation (``pipeline.executors.Failure``) scores -inf, ranked worst, as in the pipeline.
    ``wrap`` decorates the batch scorer (e.g. a journal that records and replays evaluations).
    """
    space = evaluator.space

    def one(result: Any) -> float:
        value = result.get(evaluator.metric, float("nan")) if isinstance(result, dict) else float("nan")
        return float(value) if np.isfinite(value) else -np.inf

    def many(archs: list[str]) -> list[float]:
        return [one(r) for r in executor.map(evaluator, [space.from_str(a) for a in archs])]

    scorer = wrap(many) if wrap else many
    return Oracle(lambda arch: scorer([arch])[0], budget, known, score_many=scorer)
