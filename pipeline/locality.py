"""The locality graph in bulk: archs are nodes, structurally near archs are linked.

Edges come from ``SearchSpace.pairs_within`` (hashing, never an all-pairs loop) and live in a
scipy CSR matrix; connected components and pocket growth (a breadth-first search bounded by the
pocket radius, touching only the nodes it reaches) work on that matrix, so a million archs
fit in seconds and a few hundred MB. ``to_networkx`` gives the same graph for analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class LocalityGraph:
    """Node names (arch strings) and a symmetric CSR adjacency over their indices."""

    names: list[str]
    adjacency: sparse.csr_matrix

    @classmethod
    def from_pairs(cls, names: Sequence[str], pairs: np.ndarray) -> LocalityGraph:
        """Build from index pairs (i, j), each edge given once."""
        n = len(names)
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
        data = np.ones(len(rows), dtype=np.int8)
        return cls(list(names), sparse.csr_matrix((data, (rows, cols)), shape=(n, n)))

    @property
    def edges(self) -> int:
        """Return the number of undirected edges."""
        return int(self.adjacency.nnz // 2)

    def stats(self) -> dict[str, float]:
        """Return node, edge, component and degree figures."""
        n = len(self.names)
        count, labels = connected_components(self.adjacency, directed=False) if n else (0, np.zeros(0, int))
        return {"nodes": float(n), "edges": float(self.edges), "components": float(count),
                "largest_component": float(np.bincount(labels).max()) if n else 0.0,
                "mean_degree": 2.0 * self.edges / max(1, n)}

    def to_networkx(self) -> nx.Graph:
        """Return the same graph as a networkx graph keyed by arch string."""
        graph = nx.Graph()
        graph.add_nodes_from(self.names)
        upper = sparse.triu(self.adjacency, k=1).tocoo()
        names = np.asarray(self.names, dtype=object)
        graph.add_edges_from(zip(names[upper.row], names[upper.col], strict=True))
        return graph

    @classmethod
    def from_networkx(cls, graph: nx.Graph) -> LocalityGraph:
        """Build from a networkx graph whose nodes are arch strings."""
        names = list(graph)
        index = {name: i for i, name in enumerate(names)}
        return cls.from_pairs(names, np.array([(index[a], index[b]) for a, b in graph.edges()], dtype=np.int64))


def extract_pockets(graph: LocalityGraph, scores: np.ndarray, cut: float, radius: int, max_pockets: int,
                    min_size: int) -> list[tuple[int, list[int]]]:
    """Greedily grow disjoint pockets of good nodes; return (seed, members best first) by index.

    Good = score >= cut. Seeds are the best unclaimed good nodes (ties by name); a pocket is every
    unclaimed good node within ``radius`` hops of its seed through good nodes only.
    """
    scores = np.asarray(scores, dtype=float)
    names = np.asarray(graph.names)
    good = np.flatnonzero(scores >= cut)
    ranked = good[np.lexsort((names[good], -scores[good]))]
    is_good = scores >= cut
    indptr, indices = graph.adjacency.indptr, graph.adjacency.indices
    claimed = np.zeros(len(scores), dtype=bool)
    rank = np.empty(len(scores), dtype=np.int64)
    rank[ranked] = np.arange(len(ranked))
    found: list[tuple[int, list[int]]] = []
    for seed in ranked.tolist():
        if len(found) == max_pockets:
            break
        if claimed[seed]:
            continue
        region = _ball(indptr, indices, is_good, seed, radius)
        members = sorted((m for m in region if not claimed[m]), key=lambda m: rank[m])
        if len(members) < min_size:
            continue
        claimed[members] = True
        found.append((seed, members))
    return found


def _ball(indptr: np.ndarray, indices: np.ndarray, allowed: np.ndarray, seed: int, radius: int) -> list[int]:
    """Return the nodes within ``radius`` hops of ``seed`` through ``allowed`` nodes (BFS)."""
    seen = {seed}
    frontier = [seed]
    for _ in range(radius):
        nxt = []
        for node in frontier:
            for other in indices[indptr[node]:indptr[node + 1]].tolist():
                if allowed[other] and other not in seen:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return list(seen)


def pocket_records(graph: LocalityGraph, found: list[tuple[int, list[int]]]) -> list[tuple[str, list[str]]]:
    """Return (seed name, member names) of index pockets."""
    return [(graph.names[seed], [graph.names[m] for m in members]) for seed, members in found]

