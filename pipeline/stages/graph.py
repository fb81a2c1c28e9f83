"""Stage ``graph``: link every evaluated arch to the evaluated archs structurally near it.

Near = within ``link_distance`` of the space's own distance, or (``shrink.latent.locality=latent``)
among an arch's ``latent_k`` nearest evaluated archs in the learned embedding (pipeline/latent.py).
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np

from pipeline.config.stages import GraphCfg
from pipeline.context import StageContext
from pipeline.locality import LocalityGraph

NEEDS, MAKES = ("scores",), ("graph",)


Cfg = GraphCfg  # declared in pipeline/config/stages.py (light: read before composing)


def load_locality(data: dict[str, Any]) -> LocalityGraph:
    """Rebuild the (CSR) locality graph saved by this stage."""
    return LocalityGraph.from_pairs(data["nodes"], np.asarray(data["edges"], dtype=np.int64).reshape(-1, 2))


def load_graph(data: dict[str, Any]) -> nx.Graph:
    """Rebuild the graph saved by this stage as a networkx graph (for analysis)."""
    return load_locality(data).to_networkx()


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Build the graph over all archs evaluated so far and save it as node list + edge pairs."""
    nodes = list(ctx.evaluated())
    if ctx.uses_latent():  # the learned locality: each arch's k nearest evaluated archs in latent space
        pairs = ctx.latent.knn_pairs(nodes, ctx.latent.cfg.latent_k)
    else:
        pairs = ctx.space.pairs_within([ctx.space.from_str(s) for s in nodes], cfg.link_distance)
    ctx.save("graph", {"link_distance": cfg.link_distance, "locality": "latent" if ctx.uses_latent() else "space",
                       "nodes": nodes, "edges": pairs.tolist()})
    return LocalityGraph.from_pairs(nodes, pairs).stats()
