"""The NAS-Bench-201 cell space: 6 edges x 5 operations = 15,625 cells."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from spaces.base import Arch, CategoricalSpace
from spaces.errors import InvalidArchError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Official edge order: node 1 <- 0 | node 2 <- 0, 1 | node 3 <- 0, 1, 2.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
# NASLib's NB201 convention: its op order, and which of our edges sits at each of its positions.
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = (0, 1, 3, 2, 4, 5)
_TOKEN = re.compile(r"^([^~|]*)~(\d+)$")


class NB201Space(CategoricalSpace):
    """NAS-Bench-201 cells (Dong & Yang, ICLR 2020) in the official string format.

    ``C`` and ``N`` set the macro skeleton used by ``build_model`` (the benchmark uses C=16, N=5).
    """

    name = "nb201"

    def __init__(self, C: int = 16, N: int = 5) -> None:
        super().__init__([f"edge {j}<-{i}" for j, i in EDGES], [OPS] * len(EDGES))
        if C < 1 or N < 1:
            raise ValueError(f"nb201: C={C} and N={N} must both be >= 1")
        self.C, self.N = C, N

    def to_str(self, arch: Arch) -> str:
        """Write the official ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` string."""
        self.validate(arch)
        nodes = []
        for node in (1, 2, 3):
            tokens = [f"{op}~{i}" for (j, i), op in zip(EDGES, arch, strict=True) if j == node]
            nodes.append("|" + "|".join(tokens) + "|")
        return "+".join(nodes)

    def from_str(self, text: str) -> Arch:
        """Parse the official string; errors name the edge and the allowed operations."""
        if not isinstance(text, str):
            raise InvalidArchError(f"nb201: expected an architecture string, got {text!r}")
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise InvalidArchError(
                f"nb201: {text!r} has {len(groups)} node groups; expected 3 like "
                "'|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|'"
            )
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            ops += self._parse_node(text, node, group)
        return self.validate(tuple(ops))

    def _parse_node(self, text: str, node: int, group: str) -> list[str]:
        """Parse one ``|op~0|op~1|`` group of node ``node``."""
        tokens = group.strip("|").split("|") if group.startswith("|") and group.endswith("|") else []
        if len(tokens) != node:
            raise InvalidArchError(
                f"nb201: node {node} in {text!r} must read |op~0|...|op~{node - 1}| "
                f"with {node} inputs, got {group!r}"
            )
        ops = []
        for source, token in enumerate(tokens):
            match = _TOKEN.match(token)
            if match is None or int(match.group(2)) != source:
                raise InvalidArchError(
                    f"nb201: edge {node}<-{source} in {text!r}: token {token!r} must read 'op~{source}'"
                )
            if match.group(1) not in OPS:
                raise InvalidArchError(
                    f"nb201: edge {node}<-{source}: {match.group(1)!r} is not one of {', '.join(OPS)}"
                )
            ops.append(match.group(1))
        return ops

    def equivalence_key(self, arch: Arch) -> str:
        """Return the cell's output as a canonical expression of its input ``x``.

        Exact algebra only: sums are commutative (sorted terms), ``skip_connect`` is the identity,
        ``none`` and pooling or skipping an all-zero node contribute nothing, and a convolution
        of an all-zero node is kept as a term (its batch norm emits a learned constant). Parallel
        edges stay separate terms (their weights differ). 15,625 cells fall into 6,470 classes;
        NB201's own `to_unique_str` rule gives 6,466 because it treats a convolution of zeros as
        zero and keeps zero terms in sums.
        """
        nodes = {0: "x"}
        for node in (1, 2, 3):
            terms = []
            for (j, i), op in zip(EDGES, self.validate(arch), strict=True):
                if j != node or op == "none" or (nodes[i] == "0" and op in ("skip_connect", "avg_pool_3x3")):
                    continue
                terms.append(nodes[i] if op == "skip_connect" else f"{op}({nodes[i]})")
            terms.sort()
            nodes[node] = "[" + "+".join(terms) + "]" if len(terms) > 1 else (terms[0] if terms else "0")
        return nodes[3]

    def to_compact(self, arch: Arch) -> tuple[int, ...]:
        """Return NASLib's NB201 tuple: its op order and edge order 0-1, 0-2, 0-3, 1-2, 1-3, 2-3."""
        self.validate(arch)
        return tuple(NASLIB_OPS.index(arch[k]) for k in NASLIB_EDGES)

    def from_compact(self, compact: Any) -> Arch:
        """Parse NASLib's NB201 tuple, with an error naming a bad index."""
        if len(compact) != len(EDGES) or any(not isinstance(i, int) or not 0 <= i < len(OPS) for i in compact):
            raise InvalidArchError(f"nb201: NASLib tuple {list(compact)!r} must hold 6 op indices in 0..4")
        ops: list[str] = [""] * len(EDGES)
        for position, k in enumerate(NASLIB_EDGES):
            ops[k] = NASLIB_OPS[compact[position]]
        return tuple(ops)

    def graph_ops(self) -> tuple[str, ...]:
        """Return the node labels of the graph view: input, output and the five operations."""
        return ("input", "output", *OPS)

    def graphs(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """Return arch2vec's view of cells: 8 nodes (input, the 6 edge operations, output), one DAG for all.

        An operation on edge j<-i reads every operation that ends in node i (node 0: the input),
        and the output sums the operations that end in node 3.
        """
        v = len(EDGES) + 2
        adj = np.zeros((v, v), np.int8)
        for k, (_, i) in enumerate(EDGES):
            sources = [0] if i == 0 else [1 + m for m, (j, _) in enumerate(EDGES) if j == i]
            adj[sources, 1 + k] = 1
        adj[[1 + k for k, (j, _) in enumerate(EDGES) if j == 3], v - 1] = 1
        labels = np.zeros((len(archs), v), np.int64)
        labels[:, -1] = 1
        labels[:, 1:-1] = self.codes(archs) + 2
        return np.broadcast_to(adj, (len(archs), v, v)).copy(), labels

    def costs(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> tuple[int, int]:
        """Return (params, FLOPs) from per-operation counts: exact and without building the network."""
        from spaces.nb201.costs import cost_table

        return cost_table(self.C, self.N, num_classes, tuple(input_shape)).cost(self.validate(arch))

    def build_supernet(self, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Return the weight-sharing supernet over every arch of this space (capability SupernetSpace)."""
        from spaces.nb201.supernet import NB201Supernet

        return NB201Supernet(input_shape[0], num_classes, self.C, self.N)

    def load_subnet(self, net: Any, supernet: Any, codes: Sequence[int]) -> Any:
        """Copy the supernet's weights of path ``codes`` into ``net``."""
        from spaces.nb201.supernet import load_subnet

        return load_subnet(net, supernet, codes)

    def build_model(
        self, arch: Arch, input_shape: tuple[int, ...], num_classes: int, **overrides: Any
    ) -> Any:
        """Build the NB201 network (stem, 3 stages of N cells, residual reductions)."""
        from spaces.nb201.model import NB201Network

        kwargs = {"C": self.C, "N": self.N, **overrides}
        return NB201Network(self.validate(arch), in_channels=input_shape[0], num_classes=num_classes, **kwargs)

    def config(self) -> dict[str, Any]:
        """Return the arguments that rebuild this space."""
        return {"_target_": "spaces.nb201.NB201Space", "C": self.C, "N": self.N}
