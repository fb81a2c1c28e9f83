"""The search-space contract, run over every conf/space/*.yaml (a new space needs no edit here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from hydra.utils import instantiate

from spaces import InvalidArchError, SearchSpace, from_config
from tests.conftest import CONF

SPACE_FILES = sorted((CONF / "space").glob("*.yaml"))


@pytest.fixture(params=SPACE_FILES, ids=[p.stem for p in SPACE_FILES])
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return instantiate(yaml.safe_load(request.param.read_text()))


def sample(space: SearchSpace, n: int = 40, seed: int = 0) -> list:
    return space.sample_unique(n, np.random.default_rng(seed))


def test_size_is_a_positive_int(space: SearchSpace) -> None:
    assert isinstance(space.size(), int) and space.size() > 1


def test_samples_are_valid_and_reproducible(space: SearchSpace) -> None:
    first, again = sample(space), sample(space)
    assert first == again
    assert all(space.check(a) is None for a in first)
    assert len({space.to_str(a) for a in first}) == len(first)


def test_string_round_trip(space: SearchSpace) -> None:
    for arch in sample(space):
        assert space.from_str(space.to_str(arch)) == arch


def test_encoding_has_fixed_length(space: SearchSpace) -> None:
    lengths = {space.encode(a).shape for a in sample(space)}
    assert len(lengths) == 1


def test_distance_is_a_metric_on_samples(space: SearchSpace) -> None:
    archs = sample(space, 12)
    for a in archs:
        assert space.distance(a, a) == 0
        for b in archs:
            assert space.distance(a, b) == space.distance(b, a)
            assert (space.distance(a, b) == 0) == (space.canonical(a) == space.canonical(b))


def test_neighbors_are_valid_distinct_and_at_distance_one(space: SearchSpace) -> None:
    arch = sample(space, 1)[0]
    neighbours = space.neighbors(arch)
    assert neighbours == space.neighbors(arch)
    assert len({space.to_str(n) for n in neighbours}) == len(neighbours) > 0
    assert all(space.distance(arch, n) == 1 for n in neighbours)


@pytest.mark.parametrize("radius", [1, 2])
def test_bulk_pairs_equal_pairwise_distances(space: SearchSpace, radius: int) -> None:
    archs = sample(space, 60, seed=radius)
    expected = {(i, j) for i in range(len(archs)) for j in range(i + 1, len(archs))
                if space.distance(archs[i], archs[j]) <= radius}
    assert {tuple(p) for p in space.pairs_within(archs, radius).tolist()} == expected


def test_garbage_is_rejected_with_a_domain_error(space: SearchSpace) -> None:
    assert isinstance(space.check("not an arch"), InvalidArchError)
    with pytest.raises(InvalidArchError):
        space.validate(("bogus",))
    with pytest.raises(InvalidArchError):
        space.from_str("|bogus~0|")


def test_config_rebuilds_an_equal_space(space: SearchSpace) -> None:
    again = from_config(space.config())
    arch = sample(space, 1)[0]
    assert again.size() == space.size() and again.to_str(arch) == space.to_str(arch)


def test_model_builds_and_runs(space: SearchSpace) -> None:
    model = space.build_model(sample(space, 1)[0], (1, 8, 8), 10)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
