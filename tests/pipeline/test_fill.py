"""Surrogate-filled pockets: exact sizes against enumeration, unevaluated members, uniform sampling."""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from pipeline.stages.pockets import fill_pockets, neighbourhood
from pipeline.surrogate import Surrogate
from spaces.nb201 import NB201Space
from spaces.shrunk import Pocket, ShrunkSpace

SPACE = NB201Space()
ALL = [SPACE.to_str(a) for a in itertools.product(*SPACE.options)]


def synthetic_scores(archs: list[str]) -> dict[str, float]:
    """A smooth objective: count of 3x3 convolutions plus a little of 1x1."""
    return {a: a.count("nor_conv_3x3") + 0.3 * a.count("nor_conv_1x1") for a in archs}


def test_neighbourhood_equals_the_enumerated_hamming_ball() -> None:
    seed = ALL[1234]
    found = neighbourhood(SPACE, seed, 2, 10_000, np.random.default_rng(0), lambda a: True)
    codes = SPACE.codes([SPACE.from_str(a) for a in ALL])
    centre = SPACE.codes([SPACE.from_str(seed)])[0]
    hops = (codes != centre).sum(axis=1)
    assert len(found) == 1 + 24 + 240 == int((hops <= 2).sum())
    assert found == {a: int(h) for a, h in zip(ALL, hops, strict=True) if h <= 2}


def evaluated_sample(n_seeds: int) -> tuple[np.random.Generator, dict[str, float], list[str]]:
    """Return the rng after drawing, the synthetic scores of 150 uniform archs, and the ``n_seeds`` best as seeds."""
    rng = np.random.default_rng(0)
    scores = synthetic_scores([ALL[i] for i in rng.choice(len(ALL), 150, replace=False)])
    return rng, scores, sorted(scores, key=lambda a: -scores[a])[:n_seeds]


def test_fill_emits_exactly_the_target_size_with_predictions_for_unevaluated_members() -> None:
    rng, scores, seeds = evaluated_sample(3)
    pockets = fill_pockets(SPACE, seeds, scores, 2, 120, np.random.default_rng(1), trees=30)
    members = [m for p in pockets for m in p["members"]]
    shrunk = ShrunkSpace(SPACE, [Pocket(p["id"], p["seed"], p["seed_score"], p["radius"],
                                        tuple((m["arch"], m["score"]) for m in p["members"]), "members",
                                        tuple((m["predicted"], m["uncertainty"]) if "predicted" in m else None
                                              for m in p["members"])) for p in pockets])
    assert shrunk.size() == 120 == len(set(shrunk.arch_strs())) == sum(a in shrunk for a in ALL)
    unevaluated = [m for m in members if m["score"] is None]
    assert unevaluated and all(m["uncertainty"] >= 0 for m in unevaluated)
    assert shrunk.evaluated_count() == 120 - len(unevaluated)
    assert shrunk.prediction(unevaluated[0]["arch"]) == (unevaluated[0]["predicted"], unevaluated[0]["uncertainty"])
    ball = {a for s in seeds for a in neighbourhood(SPACE, s, 2, 10_000, rng, lambda a: True)}
    assert set(shrunk.arch_strs()) <= ball
    # Filled by estimate: the unevaluated members are predicted at least as good as the pool left out.
    truth = synthetic_scores(ALL)
    kept = np.mean([truth[a] for a in shrunk.arch_strs()])
    assert kept > np.mean([truth[a] for a in ball]) + 0.5


def test_round_trip_keeps_predictions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pocket = Pocket(0, ALL[0], 1.0, 2, ((ALL[0], 1.0), (ALL[1], None)), "members", (None, (0.9, 0.1)))
    path = ShrunkSpace(SPACE, [pocket]).save(tmp_path / "s.json")
    loaded = ShrunkSpace.load(path)
    assert loaded.prediction(ALL[1]) == (0.9, 0.1) and loaded.prediction(ALL[0]) is None and loaded.score(ALL[1]) is None


def test_sampling_a_filled_region_is_uniform() -> None:
    members = ALL[:40:2] + ALL[500:510]
    shrunk = ShrunkSpace(SPACE, [Pocket(0, members[0], None, 2, tuple((a, None) for a in members[:20])),
                                 Pocket(1, members[20], None, 2, tuple((a, None) for a in members[20:]))])
    rng = np.random.default_rng(0)
    draws = [SPACE.to_str(shrunk.sample(rng)) for _ in range(15_000)]
    counts = np.array([draws.count(a) for a in members])
    assert counts.sum() == 15_000
    assert stats.chisquare(counts).pvalue > 1e-3


def test_surrogate_spread_is_zero_nowhere_it_was_not_fitted() -> None:
    rng = np.random.default_rng(0)
    train = [ALL[i] for i in rng.choice(len(ALL), 80, replace=False)]
    scores = synthetic_scores(train)
    model = Surrogate(SPACE, seed=0).fit(train, [scores[a] for a in train])
    mean, spread = model.predict(ALL[:200])
    truth = synthetic_scores(ALL[:200])
    assert stats.kendalltau(mean, [truth[a] for a in ALL[:200]]).statistic > 0.6
    assert (spread >= 0).all() and spread.max() > 0


def test_target_fraction_overrides_target_size() -> None:
    from pipeline.stages.pockets import Cfg, target_size

    cfg = Cfg(radius=2, good_quantile=0.8, max_pockets=8, min_pocket_size=2, region="surrogate", target_size=100)
    assert target_size(SPACE, cfg) == 100
    assert target_size(SPACE, Cfg(**{**cfg.__dict__, "target_fraction": 0.01})) == 157  # ceil(0.01 * 15,625)


def test_a_seed_that_would_keep_fewer_than_min_size_archs_gives_its_places_to_the_others() -> None:
    _, scores, seeds = evaluated_sample(6)
    free = fill_pockets(SPACE, seeds, scores, 2, 120, np.random.default_rng(1), trees=30)
    sizes = sorted(len(p["members"]) for p in free)
    assert len(sizes) > 1 and sizes[0] < 30  # without a floor, some pockets are small
    floored = fill_pockets(SPACE, seeds, scores, 2, 120, np.random.default_rng(1), trees=30, min_size=sizes[0] + 1)
    assert all(len(p["members"]) > sizes[0] for p in floored)
    assert sum(len(p["members"]) for p in floored) == 120 and len(floored) < len(free)


def test_optimism_fills_with_archs_the_surrogate_is_less_sure_of() -> None:
    _, scores, seeds = evaluated_sample(3)
    unsure = []
    for optimism in (0.0, 3.0):
        pockets = fill_pockets(SPACE, seeds, scores, 2, 120, np.random.default_rng(1), trees=30, optimism=optimism)
        unsure.append(np.mean([m["uncertainty"] for p in pockets for m in p["members"] if m["score"] is None]))
        assert sum(len(p["members"]) for p in pockets) == 120
    assert unsure[1] > unsure[0]
