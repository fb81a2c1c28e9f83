"""The NAS-Bench-101 cell space (Ying et al., ICML 2019): 423,624 unique cells.

An arch is ``(ops, edges)``: the op names of the interior vertices 1..V-2 and the sorted edges
``(i, j)`` of a pruned, upper-triangular cell (vertex 0 = input, V-1 = output). Its string is
``ops=c3-c1-mp;adj=01-02-13-24-34`` (``c3`` conv3x3-bn-relu, ``c1`` conv1x1-bn-relu,
``mp`` maxpool3x3; ``ij`` an edge i -> j). ``canonical`` picks one labelling per isomorphism
class, so isomorphic cells share one string; ``sample`` is uniform over the classes.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from spaces.base import Arch, SearchSpace
from spaces.errors import InvalidArchError
from spaces.nb101 import graph

OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
SHORT = ("c3", "c1", "mp")
NB101_SIZE = 423_624  # unique cells with <= 7 vertices and <= 9 edges (NAS-Bench-101 paper)


@functools.cache
def _class_keys(max_vertices: int, max_edges: int) -> np.ndarray:
    """Return (once per process, ~3 s) the sorted canonical keys of every cell."""
    return graph.enumerate_classes(max_vertices, max_edges)


class NB101Space(SearchSpace):
    """NAS-Bench-101 cells; ``stem_channels``/``num_stacks``/``cells_per_stack`` shape the network."""

    name = "nb101"

    def __init__(self, stem_channels: int = 128, num_stacks: int = 3, cells_per_stack: int = 3) -> None:
        if min(stem_channels, num_stacks, cells_per_stack) < 1:
            raise ValueError(f"nb101: stem_channels={stem_channels}, num_stacks={num_stacks}, "
                             f"cells_per_stack={cells_per_stack} must all be >= 1")
        self.stem_channels, self.num_stacks, self.cells_per_stack = stem_channels, num_stacks, cells_per_stack

    # -- identity -----------------------------------------------------------------------------
    def size(self) -> int:
        """Return the number of isomorphism classes of valid cells (423,624)."""
        return len(_class_keys(graph.MAX_VERTICES, graph.MAX_EDGES))

    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw one isomorphism class uniformly (from the enumerated class keys)."""
        keys = _class_keys(graph.MAX_VERTICES, graph.MAX_EDGES)
        return self._from_matrix(*graph.decode_key(int(keys[int(rng.integers(len(keys)))])))

    def check(self, arch: Any) -> InvalidArchError | None:
        """Return why ``arch`` is not a pruned cell of the space, or None."""
        if not (isinstance(arch, tuple) and len(arch) == 2 and isinstance(arch[0], tuple)
                and isinstance(arch[1], tuple)):
            return InvalidArchError(f"nb101: expected (ops, edges) tuples, got {arch!r}")
        ops, edges = arch
        bad = [o for o in ops if o not in OPS]
        if bad:
            return InvalidArchError(f"nb101: op {bad[0]!r} is not one of {', '.join(OPS)}")
        v = len(ops) + 2
        if v > graph.MAX_VERTICES:
            return InvalidArchError(f"nb101: {v} vertices; at most {graph.MAX_VERTICES} (5 interior ops)")
        if any(not (isinstance(e, tuple) and len(e) == 2 and all(isinstance(x, int) for x in e)
                    and 0 <= e[0] < e[1] < v) for e in edges):
            return InvalidArchError(f"nb101: edges {edges!r} must be pairs (i, j) with 0 <= i < j < {v}")
        if list(edges) != sorted(set(edges)):
            return InvalidArchError(f"nb101: edges {edges!r} must be sorted and distinct")
        if len(edges) > graph.MAX_EDGES:
            return InvalidArchError(f"nb101: {len(edges)} edges; at most {graph.MAX_EDGES}")
        if not graph.is_full_dag(self._matrix(arch)):
            return InvalidArchError(f"nb101: {self._str(arch)!r} has a vertex off every input->output path; "
                                    "use from_spec() to prune it")
        return None

    def to_str(self, arch: Arch) -> str:
        """Write ``ops=c3-c1-mp;adj=01-02-13-24-34``."""
        return self._str(self.validate(arch))

    @staticmethod
    def _str(arch: Arch) -> str:
        """Format without validating."""
        ops, edges = arch
        return "ops=" + "-".join(SHORT[OPS.index(o)] for o in ops) + ";adj=" + "-".join(f"{i}{j}" for i, j in edges)

    def from_str(self, text: str) -> Arch:
        """Parse the string form, naming the bad part."""
        example = "'ops=c3-c1-mp;adj=01-02-13-24-34'"
        if not isinstance(text, str) or not text.startswith("ops=") or ";adj=" not in text:
            raise InvalidArchError(f"nb101: {text!r} is not of the form {example}")
        ops_text, adj_text = text[4:].split(";adj=", 1)
        ops = ops_text.split("-") if ops_text else []
        bad = [o for o in ops if o not in SHORT]
        if bad:
            raise InvalidArchError(f"nb101: op {bad[0]!r} in {text!r} is not one of {', '.join(SHORT)}")
        pairs = adj_text.split("-") if adj_text else []
        if any(len(p) != 2 or not p.isdigit() for p in pairs):
            raise InvalidArchError(f"nb101: edges in {text!r} must be digit pairs like 01-13, got {adj_text!r}")
        return self.validate((tuple(OPS[SHORT.index(o)] for o in ops), tuple((int(p[0]), int(p[1])) for p in pairs)))

    def canonical(self, arch: Arch) -> Arch:
        """Return the representative labelling of ``arch``'s isomorphism class."""
        adj, ops = graph.canonical(self._matrix(self.validate(arch)), [OPS.index(o) for o in arch[0]])
        return self._from_matrix(adj, ops)

    def from_spec(self, matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> Arch:
        """Return the canonical arch of an official (matrix, ops) spec, pruning dangling vertices."""
        adj = np.asarray(matrix, dtype=np.int8)
        v = len(ops)
        if adj.shape != (v, v) or not 2 <= v <= graph.MAX_VERTICES:
            raise InvalidArchError(f"nb101: matrix of shape {adj.shape} does not fit {v} ops (2..7 vertices)")
        if ops[0] != "input" or ops[-1] != "output" or any(o not in OPS for o in ops[1:-1]):
            raise InvalidArchError(f"nb101: ops {list(ops)!r} must be input, {{{', '.join(OPS)}}}..., output")
        if np.tril(adj).any() or not set(np.unique(adj).tolist()) <= {0, 1}:
            raise InvalidArchError("nb101: matrix must be 0/1 and strictly upper-triangular")
        pruned = graph.prune(adj, [OPS.index(o) for o in ops[1:-1]])
        if pruned is None:
            raise InvalidArchError("nb101: the cell has no input->output path")
        adj, codes = pruned
        if int(adj.sum()) > graph.MAX_EDGES:
            raise InvalidArchError(f"nb101: {int(adj.sum())} edges after pruning; at most {graph.MAX_EDGES}")
        return self._from_matrix(*graph.canonical(adj, codes))

    def to_spec(self, arch: Arch) -> tuple[list[list[int]], list[str]]:
        """Return the official (matrix, ops) spec of ``arch``."""
        return self._matrix(self.validate(arch)).tolist(), ["input", *arch[0], "output"]

    @staticmethod
    def _matrix(arch: Arch) -> np.ndarray:
        """Return the adjacency matrix of an (unvalidated) arch."""
        v = len(arch[0]) + 2
        adj = np.zeros((v, v), np.int8)
        for i, j in arch[1]:
            adj[i, j] = 1
        return adj

    @staticmethod
    def _from_matrix(adj: np.ndarray, ops: Sequence[int]) -> Arch:
        """Build an arch from an upper-triangular matrix and interior op codes."""
        edges = tuple((int(i), int(j)) for i, j in zip(*np.nonzero(adj), strict=True))
        return tuple(OPS[o] for o in ops), tuple(sorted(edges))

    # -- geometry -----------------------------------------------------------------------------
    def encode(self, arch: Arch) -> np.ndarray:
        """Return padded adjacency bits (21) and one-hot ops of 5 slots (4 each: 3 ops + absent)."""
        adj, ops = _padded(self.canonical(arch))
        onehot = np.zeros((5, graph.NUM_OPS + 1), np.float32)
        onehot[np.arange(5), ops] = 1.0
        return np.concatenate([adj[np.triu_indices(7, 1)].astype(np.float32), onehot.ravel()])

    def graph_ops(self) -> tuple[str, ...]:
        """Return the node labels of the graph view (``absent``: a padding vertex of a smaller cell)."""
        return ("input", "output", *OPS, "absent")

    def graphs(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """Return canonical cells padded to 7 vertices (output last): adjacency ``[N,7,7]`` and labels ``[N,7]``."""
        adj = np.zeros((len(archs), 7, 7), np.int8)
        labels = np.zeros((len(archs), 7), np.int64)
        for n, arch in enumerate(archs):
            adj[n], ops = _padded(self.canonical(arch))
            labels[n, 1:6] = ops + 2  # absent (graph.ABSENT) lands on the last label
        labels[:, 6] = 1
        return adj, labels

    def distance(self, a: Arch, b: Arch) -> int:
        """Return the graph edit distance (unit costs: op change, vertex or edge insert/delete)."""
        return int(_edit_distance(_padded_one(self.validate(a)), _padded_one(self.validate(b)),
                                  np.array([0]), np.array([0]))[0])

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Return every valid cell one edit away: an op change, or an edge added or removed."""
        arch = self.canonical(arch)
        adj, codes = self._matrix(arch), [OPS.index(o) for o in arch[0]]
        v = len(adj)
        out: dict[str, Arch] = {}
        for k, op in itertools.product(range(v - 2), range(graph.NUM_OPS)):
            if op != codes[k]:
                self._add(out, adj, codes[:k] + [op] + codes[k + 1:])
        reach = _reachability(adj)
        for i, j in itertools.permutations(range(v), 2):
            if adj[i, j]:
                changed = adj.copy()
                changed[i, j] = 0
                if graph.is_full_dag(changed):
                    self._add(out, changed, codes)
            elif j != 0 and i != v - 1 and not reach[j, i] and adj.sum() < graph.MAX_EDGES:
                edited, order = _toposorted(adj, i, j)
                self._add(out, edited, [codes[k - 1] for k in order[1:-1]])
        return [out[k] for k in sorted(out)]

    def _add(self, out: dict[str, Arch], adj: np.ndarray, codes: list[int]) -> None:
        """Canonicalise one edited cell into ``out``, keyed by its string."""
        key_arch = self._from_matrix(*graph.canonical(adj, codes))
        out[self._str(key_arch)] = key_arch

    def pairs_within(self, archs: Sequence[Arch], radius: int) -> np.ndarray:
        """Return index pairs within edit distance ``radius``; vertex and edge counts prune pairs first."""
        archs = [self.validate(a) for a in archs]
        padded = _Padded.of(archs)
        vertices = np.array([len(a[0]) for a in archs])
        edge_counts = np.array([len(a[1]) for a in archs])
        found = []
        for i in range(len(archs) - 1):
            js = np.arange(i + 1, len(archs))
            # Vertex and edge count differences are each a lower bound on their own edits.
            js = js[np.abs(vertices[js] - vertices[i]) + np.abs(edge_counts[js] - edge_counts[i]) <= radius]
            if len(js):
                near = js[_edit_distance(padded, padded, np.full(len(js), i), js) <= radius]
                found.append(np.stack([np.full(len(near), i), near], axis=1))
        return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)

    # -- network --------------------------------------------------------------------------------
    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Build NAS-Bench-101's network (stem, stacks of cells, max-pool between stacks)."""
        from spaces.nb101.model import NB101Network

        matrix, ops = self.to_spec(arch)
        return NB101Network(np.asarray(matrix), ops, input_shape[0], num_classes, self.stem_channels,
                            self.num_stacks, self.cells_per_stack)

    def config(self) -> dict[str, Any]:
        """Return the arguments that rebuild this space."""
        return {"_target_": "spaces.nb101.NB101Space", "stem_channels": self.stem_channels,
                "num_stacks": self.num_stacks, "cells_per_stack": self.cells_per_stack}


def _reachability(adj: np.ndarray) -> np.ndarray:
    """Return reach[i, j] = a directed path i -> j exists (i != j)."""
    reach = adj.astype(bool)
    for k in range(len(adj)):
        reach |= reach[:, [k]] & reach[[k], :]
    return reach


def _toposorted(adj: np.ndarray, i: int, j: int) -> tuple[np.ndarray, list[int]]:
    """Add edge i -> j and relabel topologically; return (matrix, old vertex of each new position)."""
    edited = adj.copy()
    edited[i, j] = 1
    order, indegree = [], edited.sum(axis=0).astype(int)
    ready = [0]
    while ready:
        ready.sort()
        k = ready.pop(0)
        order.append(k)
        for m in np.nonzero(edited[k])[0]:
            indegree[m] -= 1
            if indegree[m] == 0:
                ready.append(int(m))
    return edited[np.ix_(order, order)], order


def _padded(arch: Arch) -> tuple[np.ndarray, np.ndarray]:
    """Return the 7-vertex padded matrix (output at 6) and 5 interior op codes (absent = 3)."""
    ops, edges = arch
    v = len(ops) + 2
    place = [*range(v - 1), 6]
    adj = np.zeros((7, 7), np.int8)
    for i, j in edges:
        adj[place[i], place[j]] = 1
    codes = np.full(5, graph.ABSENT, np.int64)
    codes[: len(ops)] = [OPS.index(o) for o in ops]
    return adj, codes


class _Padded:
    """Bulk form for edit distances: each arch's bitmask, and all 120 relabellings of it."""

    def __init__(self, masks: np.ndarray, ops: np.ndarray, perm_masks: np.ndarray, perm_ops: np.ndarray) -> None:
        self.masks, self.ops, self.perm_masks, self.perm_ops = masks, ops, perm_masks, perm_ops

    @classmethod
    def of(cls, archs: Sequence[Arch]) -> _Padded:
        """Pad every arch to 7 vertices and precompute its relabellings."""
        maps = graph.full_maps(7)
        inv = np.argsort(maps, axis=1)
        weights = (1 << np.arange(49, dtype=np.int64)).reshape(7, 7)
        masks, ops, perm_masks, perm_ops = [], [], [], []
        for arch in archs:
            adj, codes = _padded(arch)
            masks.append(int((adj * weights).sum()))
            ops.append(codes)
            permuted = adj[inv[:, :, None], inv[:, None, :]]
            perm_masks.append((permuted * weights).sum(axis=(1, 2)))
            perm_ops.append(codes[inv[:, 1:-1] - 1])
        return cls(np.array(masks, np.int64), np.array(ops), np.array(perm_masks), np.array(perm_ops))


@functools.lru_cache(maxsize=100_000)
def _padded_one(arch: Arch) -> _Padded:
    """Return the bulk form of one arch (cached: distances reuse it across pairs)."""
    return _Padded.of([arch])


def _edit_distance(a: _Padded, b: _Padded, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Return the edit distance of pairs (a[ia[k]], b[ib[k]]): the best relabelling of b."""
    edges = np.bitwise_count(a.masks[ia][:, None] ^ b.perm_masks[ib]).astype(np.int64)
    ops = (a.ops[ia][:, None, :] != b.perm_ops[ib]).sum(axis=2)
    return (edges + ops).min(axis=1)
