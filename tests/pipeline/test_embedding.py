"""Graph views of every space and the arch2vec-style encoder: it reconstructs, embeds and is cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.utils import instantiate

from pipeline.embedding import EmbeddingCfg, cache_key, cached_encoder, embed, reconstruction, train_encoder
from spaces.nb201 import NB201Space
from spaces.toy import ToySpace
from tests.conftest import CONF

SPACES = {p.stem: instantiate(yaml.safe_load(p.read_text())) for p in sorted((CONF / "space").glob("*.yaml"))}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_offers_a_topological_graph_view(name: str) -> None:
    space = SPACES[name]
    archs = [space.sample(np.random.default_rng(k)) for k in range(4)]
    adj, labels = space.graphs(archs)
    n, v, _ = adj.shape
    assert (n, v) == labels.shape == (4, v) and adj.shape == (4, v, v)
    assert not np.tril(adj).any()  # upper-triangular: node order is topological
    assert labels.min() >= 0 and labels.max() < len(space.graph_ops())
    assert [space.graph_ops()[i] for i in labels[0, [0, -1]]] == ["input", "output"]


def test_nb201_graph_is_arch2vecs_eight_node_dag() -> None:
    space = NB201Space()
    arch = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    adj, labels = space.graphs([arch])
    assert [space.graph_ops()[i] for i in labels[0]] == ["input", "nor_conv_3x3", "skip_connect", "none",
                                                         "avg_pool_3x3", "nor_conv_1x1", "none", "output"]
    # edge 2<-1 (node 3) reads edge 1<-0 (node 1); the output sums the edges into node 3 (nodes 4, 5, 6).
    assert adj[0, 1, 3] == 1 and adj[0, :, 7].tolist() == [0, 0, 0, 0, 1, 1, 1, 0] and adj.sum() == 10


def test_the_encoder_reconstructs_the_toy_space_and_separates_its_archs() -> None:
    space = ToySpace()
    archs = [space.from_str(a) for a in sorted(space.to_str(x) for x in space.sample_unique(27, np.random.default_rng(0)))]
    model = train_encoder(space, archs, EmbeddingCfg(steps=300, hidden=32, layers=2, batch_size=9))
    assert reconstruction(model, space, archs)["graph_accuracy"] == 1.0
    z = embed(model, space, archs)
    assert z.shape == (27, 16) and len({tuple(np.round(row, 4)) for row in z}) == 27


def test_a_cached_encoder_is_loaded_not_retrained(tmp_path: Path, monkeypatch) -> None:
    space, cfg = ToySpace(), EmbeddingCfg(steps=5, hidden=16, layers=1)
    first = cached_encoder(space, cfg, tmp_path)
    assert (tmp_path / f"{cache_key(space, cfg)}.pt").is_file()
    monkeypatch.setattr("pipeline.embedding.train_encoder", lambda *a, **k: pytest.fail("retrained"))
    again = cached_encoder(space, cfg, tmp_path)
    archs = [space.sample(np.random.default_rng(1))]
    assert np.array_equal(embed(first, space, archs), embed(again, space, archs))
    assert cache_key(space, cfg) != cache_key(space, EmbeddingCfg(steps=6, hidden=16, layers=1))


@pytest.mark.gpu
def test_the_encoder_trains_on_cuda_and_comes_back_on_the_cpu() -> None:
    space = ToySpace()
    archs = [space.sample(np.random.default_rng(k)) for k in range(20)]
    model = train_encoder(space, archs, EmbeddingCfg(steps=50, hidden=16, layers=1))
    assert next(model.parameters()).device.type == "cpu" and embed(model, space, archs).shape == (20, 16)
