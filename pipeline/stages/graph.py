"""Stage ``graph``: link every evaluated arch to the evaluated archs structurally near it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from pipeline.context import StageContext

NEEDS, MAKES = ("scores",), ("graph",)


@dataclass(frozen=True)
class Cfg:
    """Knobs of the graph stage."""

    link_distance: int  # archs at structural distance <= this are linked


def graph_from_pairs(arch_strs: Sequence[str], pairs: np.ndarray) -> nx.Graph:
    """Return a graph over ``arch_strs`` with the given index pairs as edges."""
    graph = nx.Graph()
    graph.add_nodes_from(arch_strs)
    names = np.asarray(arch_strs, dtype=object)
    graph.add_edges_from(zip(names[pairs[:, 0]], names[pairs[:, 1]], strict=True))
    return graph


def load_graph(data: dict[str, Any]) -> nx.Graph:
    """Rebuild the graph saved by this stage."""
    return graph_from_pairs(data["nodes"], np.asarray(data["edges"], dtype=np.int64).reshape(-1, 2))


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Build the graph over all archs evaluated so far and save it as node list + edge pairs."""
    nodes = list(ctx.evaluated())
    pairs = ctx.space.pairs_within([ctx.space.from_str(s) for s in nodes], cfg.link_distance)
    ctx.save("graph", {"link_distance": cfg.link_distance, "nodes": nodes, "edges": pairs.tolist()})
    graph = graph_from_pairs(nodes, pairs)
    components = list(nx.connected_components(graph))
    return {
        "nodes": float(graph.number_of_nodes()),
        "edges": float(graph.number_of_edges()),
        "components": float(len(components)),
        "largest_component": float(max((len(c) for c in components), default=0)),
        "mean_degree": 2.0 * graph.number_of_edges() / max(1, graph.number_of_nodes()),
    }
