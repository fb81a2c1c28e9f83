"""Unions of balls: exact size and uniform sampling without enumerating the space."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from spaces import shrunk as shrunk_module
from spaces.mobilenet import MobileNetSpace
from spaces.nb201 import NB201Space
from spaces.regions import BallUnion
from spaces.shrunk import Pocket, ShrunkSpace, ShrunkSpaceError

NB201 = NB201Space()
MOBILE = MobileNetSpace()


def test_union_size_matches_brute_force_with_overlapping_balls() -> None:
    rng = np.random.default_rng(0)
    centre = NB201.sample(rng)
    near = NB201.neighbors(centre)[3]  # overlapping balls: centres one step apart
    centres, radii = [centre, near, NB201.sample(rng)], [2, 1, 1]
    union = BallUnion(NB201, centres, radii)
    inside = [a for a in itertools.product(*NB201.options)
              if any(NB201.distance(a, c) <= r for c, r in zip(centres, radii, strict=True))]
    assert union.size() == len(inside)
    assert all(a in union for a in inside[:50])


def test_mobilenet_ball_counts_equal_enumerating_the_ball() -> None:
    centre = MOBILE.sample(np.random.default_rng(1))
    frontier, ball = {centre}, {centre}
    for _ in range(2):  # the radius-2 ball by breadth-first search over neighbours
        frontier = {n for a in frontier for n in MOBILE.neighbors(a)} - ball
        ball |= frontier
    union = BallUnion(MOBILE, [centre], [2])
    assert union.size() == len(ball) and set(union.members()) == ball
    assert BallUnion(MOBILE, [centre], [1]).size() == len(MOBILE.neighbors(centre)) + 1


def test_sampling_is_uniform_over_the_union() -> None:
    rng = np.random.default_rng(2)
    centre = NB201.sample(rng)
    union = BallUnion(NB201, [centre, NB201.neighbors(centre)[0]], [1, 1])
    draws = Counter(NB201.to_str(union.sample(rng)) for _ in range(union.size() * 200))
    assert len(draws) == union.size()
    counts = np.array(list(draws.values()))
    # Each member expects 200 draws; a binomial 5-sigma band is +-70.
    assert counts.min() > 130 and counts.max() < 270


def ball_space(radius: int = 2, pockets: int = 3) -> ShrunkSpace:
    rng = np.random.default_rng(3)
    seeds = [MOBILE.to_str(MOBILE.sample(rng)) for _ in range(pockets)]
    made = [Pocket(i, s, 1.0, radius, ((s, 1.0),), region="ball") for i, s in enumerate(seeds)]
    return ShrunkSpace(MOBILE, made, "val_acc")


def test_shrunk_space_over_a_huge_space_is_exact_and_sampleable(tmp_path: Path) -> None:
    space = ball_space()
    assert space.size() == sum(BallUnion(MOBILE, [MOBILE.from_str(p.seed)], [2]).size() for p in space.pockets)
    rng = np.random.default_rng(4)
    draws = [space.sample(rng) for _ in range(100)]
    assert all(d in space for d in draws) and all(MOBILE.check(d) is None for d in draws)
    again = ShrunkSpace.load(space.save(tmp_path / "s.json"))
    assert again.size() == space.size() and again.pockets[0].region == "ball"
    assert len(again.arch_strs()) == space.size()
    assert space.score(MOBILE.to_str(draws[0])) in (None, 1.0)


def test_listing_a_huge_union_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shrunk_module, "LIST_LIMIT", 100)
    space = ball_space()
    with pytest.raises(ShrunkSpaceError, match="use sample"):
        space.arch_strs()
    assert space.members() == [p.seed for p in space.pockets]


def test_ball_pockets_need_a_categorical_space() -> None:
    from spaces.nb101 import NB101Space

    nb101 = NB101Space()
    seed = "ops=c3;adj=01-12"
    with pytest.raises(ValueError, match="must list their members"):
        ShrunkSpace(nb101, [Pocket(0, seed, None, 1, ((seed, None),), region="ball")])
