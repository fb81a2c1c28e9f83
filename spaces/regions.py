"""Unions of balls in a categorical space: exact size and exact uniform sampling, no enumeration.

A ball is every valid arch within Hamming distance ``radius`` of a centre. Counting the union of
a few balls in a space of 1e19 archs is a dynamic programme over the decisions: the state is
the space's validity-automaton state plus each centre's distance so far (capped at radius + 1);
options that agree with the same centres share one transition, so the work is
decisions x reachable states x (centres + 2), whatever the space's size. Sampling walks the
same programme forward, choosing each option with probability proportional to the number of
completions, which is exactly uniform over the union.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from spaces.base import Arch, CategoricalSpace


class BallUnion:
    """The union of balls ``{x valid : hamming(x, centre_i) <= radius_i}`` over ``space``."""

    def __init__(self, space: CategoricalSpace, centres: Sequence[Arch], radii: Sequence[int]) -> None:
        if len(centres) != len(radii):
            raise ValueError(f"{len(centres)} centres but {len(radii)} radii")
        self.space = space
        self.centres = space.codes([space.validate(c) for c in centres]) if centres else np.zeros((0, 0), int)
        self.radii = tuple(int(r) for r in radii)
        self._count = functools.lru_cache(maxsize=None)(self._completions)
        self._moves = functools.lru_cache(maxsize=None)(self._group_moves)

    def size(self) -> int:
        """Return the exact number of distinct archs in the union."""
        return self._count(0, self.space.automaton_start(), (0,) * len(self.radii)) if self.radii else 0

    def __contains__(self, arch: Arch) -> bool:
        codes = self.space.codes([arch])[0]
        return bool(any((codes != c).sum() <= r for c, r in zip(self.centres, self.radii, strict=True)))

    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw one member uniformly at random."""
        state, dist = self.space.automaton_start(), (0,) * len(self.radii)
        codes = []
        for col in range(len(self.space.decisions)):
            moves = self._moves(col, state, dist)
            weights = np.array([float(len(opts) * self._count(col + 1, nxt, nd)) for opts, nxt, nd in moves])
            # Exact integer weights can exceed float range only for astronomically large unions.
            opts, state, dist = moves[int(rng.choice(len(moves), p=weights / weights.sum()))]
            codes.append(opts[int(rng.integers(len(opts)))])
        return tuple(self.space.options[d][c] for d, c in enumerate(codes))

    def members(self) -> list[Arch]:
        """Enumerate the union (depth-first over the same programme: work ~ its size, no checks)."""
        out: list[Arch] = []
        options = self.space.options

        def walk(col: int, state: int, dist: tuple[int, ...], prefix: list[int]) -> None:
            if col == len(options):
                out.append(tuple(options[d][c] for d, c in enumerate(prefix)))
                return
            for opts, nxt, nd in self._moves(col, state, dist):
                for option in opts:
                    walk(col + 1, nxt, nd, [*prefix, option])

        if self.radii:
            walk(0, self.space.automaton_start(), (0,) * len(self.radii), [])
        return out

    def _completions(self, col: int, state: int, dist: tuple[int, ...]) -> int:
        """Return the number of valid completions from ``col`` that end inside some ball."""
        if all(d > r for d, r in zip(dist, self.radii, strict=True)):
            return 0
        if col == len(self.space.decisions):
            return 1 if self.space.automaton_accepts(state) else 0
        return sum(len(opts) * self._count(col + 1, nxt, nd) for opts, nxt, nd in self._moves(col, state, dist))

    def _group_moves(self, col: int, state: int, dist: tuple[int, ...]) -> list[tuple[list[int], int, tuple[int, ...]]]:
        """Group the options of ``col`` by their effect: (options, next state, next distances)."""
        groups: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        for option in range(len(self.space.options[col])):
            nxt = self.space.automaton_step(col, state, option)
            if nxt is None:
                continue
            nd = tuple(min(d + int(option != c[col]), r + 1)
                       for d, c, r in zip(dist, self.centres, self.radii, strict=True))
            groups.setdefault((nxt, nd), []).append(option)
        return [(opts, nxt, nd) for (nxt, nd), opts in groups.items() if self._count(col + 1, nxt, nd)]
