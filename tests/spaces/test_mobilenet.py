"""MobileNetV3 (OFA-style) space: size, strings, depth-aligned geometry, network and costs."""

from __future__ import annotations

import numpy as np
import pytest

from spaces import InvalidArchError
from spaces.costs import count_flops, count_params
from spaces.mobilenet import SKIP, MobileNetSpace

S = MobileNetSpace()
ARCH = "k3e4.k5e6_k3e3.k3e3.k7e6_k5e4.k5e4_k7e6.k3e3_k3e6.k5e3.k7e4.k3e3"


def test_size_is_the_ofa_count() -> None:
    assert S.size() == (9**2 + 9**3 + 9**4) ** 5 == 21_758_655_492_572_485_851


def test_strings_are_depth_aligned_slots() -> None:
    arch = S.from_str(ARCH)
    assert len(arch) == 20 and arch[:4] == ("k3e4", "k5e6", SKIP, SKIP)
    assert S.to_str(arch) == ARCH
    assert S.layers(arch)[1] == [(3, 3), (3, 3), (7, 6)]


@pytest.mark.parametrize("text, match", [
    ("k3e4_k3e3", "5 stages"), ("k3e4_k3e3.k3e3_k5e4.k5e4_k7e6.k3e3_k3e6.k5e3", "stage 1 has 1 layers"),
    ("k3e4.k9e6_k3e3.k3e3_k5e4.k5e4_k7e6.k3e3_k3e6.k5e3", "stage 1 layer 'k9e6'"),
])
def test_bad_strings_name_the_stage(text: str, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match):
        S.from_str(text)


def test_a_skip_inside_a_stage_is_invalid() -> None:
    arch = list(S.from_str(ARCH))
    arch[1], arch[2] = SKIP, "k3e3"
    assert "stage 1" in str(S.check(tuple(arch)))


def test_neighbours_change_a_layer_or_the_depth() -> None:
    arch = S.from_str(ARCH)
    names = [S.to_str(n) for n in S.neighbors(arch)]
    # 13 layers x 8 other choices + 4 stages that can grow by one of 9 layers + 2 that can shrink.
    assert len(names) == 13 * 8 + 4 * 9 + 2
    assert "k3e4.k5e6.k7e3_k3e3.k3e3.k7e6_k5e4.k5e4_k7e6.k3e3_k3e6.k5e3.k7e4.k3e3" in names
    assert "k3e4.k5e6_k3e3.k3e3_k5e4.k5e4_k7e6.k3e3_k3e6.k5e3.k7e4.k3e3" in names
    assert all(S.distance(arch, S.from_str(n)) == 1 for n in names)


def test_sampling_is_uniform_over_depths() -> None:
    rng = np.random.default_rng(0)
    depths = np.array([len(S.layers(S.sample(rng))[0]) for _ in range(4000)])
    # P(depth) = 9^d / (9^2 + 9^3 + 9^4): 0.011, 0.099, 0.890.
    assert np.mean(depths == 4) == pytest.approx(6561 / 7371, abs=0.02)
    assert np.mean(depths == 3) == pytest.approx(729 / 7371, abs=0.02)


@pytest.mark.parametrize("shape, width", [((3, 224, 224), 1.0), ((3, 32, 32), 1.2), ((1, 8, 8), 0.5)])
def test_closed_form_costs_equal_counting_the_network(shape: tuple[int, ...], width: float) -> None:
    space = MobileNetSpace(width)
    arch = space.sample(np.random.default_rng(1))
    model = space.build_model(arch, shape, 1000)
    assert space.costs(arch, shape, 1000) == (count_params(model), count_flops(model, shape))


def test_imagenet_costs_span_the_mobile_range() -> None:
    small = S.from_str("_".join(["k3e3.k3e3"] * 5))
    large = S.from_str("_".join(["k7e6.k7e6.k7e6.k7e6"] * 5))
    flops = [S.costs(a, (3, 224, 224), 1000)[1] / 2e6 for a in (small, large)]  # multiply-adds, millions
    assert 100 < flops[0] < 200 and 500 < flops[1] < 800


def test_latency_table_predicts_every_arch_and_names_missing_blocks(tmp_path) -> None:
    from spaces.mobilenet.latency import LatencyError, LatencyTable, measure_table

    space, shape = MobileNetSpace(0.5), (1, 8, 8)
    table = measure_table(space, shape, num_classes=10, repeats=1)
    # 5 stages x (first, later) x 9 layer choices + the fixed first block + stem + head.
    assert len(table.entries) == 5 * 2 * 9 + 3
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    assert all(space.latency(a, shape, table) > 0 for a in archs)
    again = LatencyTable.load(table.save(tmp_path / "cpu.csv"))
    assert again.predict(space, archs[0], shape) == pytest.approx(table.predict(space, archs[0], shape))
    with pytest.raises(LatencyError, match="no entry 'stem:32x32"):
        table.predict(space, archs[0], (1, 32, 32))
