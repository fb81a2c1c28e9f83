"""NAS-Bench-201 golden facts."""

from __future__ import annotations

import pytest
import torch

from spaces import InvalidArchError
from spaces.nb201 import NB201Space
from spaces.nb201.costs import cost_table, count_flops, count_params

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture
def space() -> NB201Space:
    return NB201Space()


def test_size_is_15625(space: NB201Space) -> None:
    assert space.size() == 15_625


def test_official_string_round_trip(space: NB201Space) -> None:
    arch = space.from_str(ARCH)
    assert arch == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "skip_connect")
    assert space.to_str(arch) == ARCH


def test_24_neighbours_in_edge_then_op_order(space: NB201Space) -> None:
    neighbours = [space.to_str(n) for n in space.neighbors(space.from_str(ARCH))]
    assert len(neighbours) == 24
    assert neighbours[0] == "|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert neighbours[-1] == "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def test_one_hot_encoding(space: NB201Space) -> None:
    vec = space.encode(space.from_str(ARCH))
    assert vec.shape == (30,) and vec.sum() == 6 and vec[3] == 1.0  # edge 1<-0 = nor_conv_3x3


def test_hamming_distance(space: NB201Space) -> None:
    other = space.from_str("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|")
    assert space.distance(space.from_str(ARCH), other) == 2


def test_bad_op_names_the_edge_and_allowed_ops(space: NB201Space) -> None:
    bad = ARCH.replace("avg_pool_3x3~1", "conv_9x9~1")
    with pytest.raises(InvalidArchError, match=r"edge 2<-1: 'conv_9x9' is not one of none, skip_connect, "
                                               r"nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"):
        space.from_str(bad)


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|none~0|none~1|", "2 node groups"),
    ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", r"edge 1<-0 .* must read 'op~0'"),
    ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 .* with 2 inputs"),
])
def test_malformed_strings_are_named(space: NB201Space, text: str, message: str) -> None:
    with pytest.raises(InvalidArchError, match=message):
        space.from_str(text)


@pytest.mark.parametrize("arch, params", [
    # Reference parameter counts of the benchmark network (NAS-Bench-Suite-Zero, CIFAR-10, C=16, N=5).
    ("|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_1x1~1|none~2|", 615_386),
    ("|avg_pool_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|", 316_346),
])
def test_network_matches_benchmark_parameter_counts(space: NB201Space, arch: str, params: int) -> None:
    assert count_params(space.build_model(space.from_str(arch), (3, 32, 32), 10)) == params


def test_cost_table_equals_whole_network_counts(space: NB201Space) -> None:
    table = cost_table(4, 2, 10, (3, 16, 16))
    small = NB201Space(C=4, N=2)
    for text in (ARCH, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                 "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"):
        model = small.build_model(small.from_str(text), (3, 16, 16), 10)
        assert table.cost(small.from_str(text)) == (count_params(model), count_flops(model, (3, 16, 16)))


def test_all_none_cell_outputs_constant_logits(space: NB201Space) -> None:
    model = NB201Space(C=4, N=1).build_model(space.from_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), (1, 8, 8), 10)
    model.eval()
    out = model(torch.randn(3, 1, 8, 8))
    assert torch.allclose(out[0], out[1]) and torch.allclose(out[1], out[2])


@pytest.mark.parametrize("side", [7, 10, 13])
def test_odd_sizes_after_a_reduction_build_and_train(side: int) -> None:
    small = NB201Space(C=4, N=1)
    for model in (small.build_model(small.from_str(ARCH), (1, side, side), 10),
                  small.build_supernet((1, side, side), 10)):
        args = () if model.__class__.__name__ == "NB201Network" else (small.codes([small.from_str(ARCH)])[0],)
        out = model(torch.randn(2, 1, side, side), *args)
        out.sum().backward()
        assert out.shape == (2, 10)
