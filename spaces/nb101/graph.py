"""Cell-graph algebra of NAS-Bench-101: pruning, canonical labelling, enumeration, edit distance.

A cell is a DAG whose vertex 0 is the input and vertex V-1 the output; interior vertices carry
one of three op codes. Matrices here are (V, V) 0/1 arrays, ``adj[i, j] = 1`` for an edge i -> j.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

MAX_VERTICES, MAX_EDGES, NUM_OPS = 7, 9, 3
ABSENT = NUM_OPS  # op code of a padding vertex in the edit distance
OP_SPAN = NUM_OPS ** (MAX_VERTICES - 2)  # op digits occupy the lowest base-3 places of a key


@functools.cache
def interior_perms(n: int) -> np.ndarray:
    """Return every permutation of ``n`` interior vertices, shape (n!, n)."""
    perms = list(itertools.permutations(range(n)))
    return np.array(perms, dtype=np.int64).reshape(len(perms), n)


@functools.cache
def full_maps(v: int) -> np.ndarray:
    """Return old->new vertex maps fixing input and output, one row per interior permutation."""
    perms = interior_perms(v - 2) + 1
    rows = len(perms)
    return np.concatenate([np.zeros((rows, 1), np.int64), perms, np.full((rows, 1), v - 1, np.int64)], axis=1)


def prune(adj: np.ndarray, ops: list[int]) -> tuple[np.ndarray, list[int]] | None:
    """Drop vertices not on an input->output path (NAS-Bench-101's rule); None if no path."""
    v = len(adj)
    reach = np.zeros(v, bool)
    reach[0] = True
    for i in range(v):  # upper-triangular: one forward pass reaches everything
        if reach[i]:
            reach |= adj[i].astype(bool)
    back = np.zeros(v, bool)
    back[v - 1] = True
    for i in range(v - 1, -1, -1):
        if back[i]:
            back |= adj[:, i].astype(bool)
    keep = np.nonzero(reach & back)[0]
    if not (reach[v - 1] and back[0]):
        return None
    return adj[np.ix_(keep, keep)], [ops[k - 1] for k in keep[1:-1]]


def is_full_dag(adj: np.ndarray) -> bool:
    """Tell whether every vertex lies on an input->output path (upper-triangular ``adj``)."""
    v = len(adj)
    out_missing = np.nonzero(~adj.any(axis=1))[0].tolist()
    in_missing = np.nonzero(~adj.any(axis=0))[0].tolist()
    return out_missing == [v - 1] and in_missing == [0]


@functools.cache
def bit_weights(v: int) -> np.ndarray:
    """Return the (v, v) weight of each edge in NAS-Bench-101's bit order: edge x->y is bit y(y-1)/2 + x."""
    x, y = np.meshgrid(np.arange(v), np.arange(v), indexing="ij")
    return np.where(x < y, np.left_shift(1, y * (y - 1) // 2 + x), 0).astype(np.int64)


def _relabellings(adj: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (matrices, old vertex per new position, bits) of the upper-triangular relabellings."""
    v = len(adj)
    inv = np.argsort(full_maps(v), axis=1)  # new position -> old vertex
    permuted = adj[inv[:, :, None], inv[:, None, :]]
    upper = ~np.tril(permuted).reshape(len(inv), -1).any(axis=1)
    permuted, inv = permuted[upper], inv[upper]
    return permuted, inv, (permuted.astype(np.int64) * bit_weights(v)).sum(axis=(1, 2))


def canonical(adj: np.ndarray, ops: list[int]) -> tuple[np.ndarray, list[int]]:
    """Relabel a pruned cell to its isomorphism-class representative.

    Among the relabellings that fix input and output and keep the matrix upper-triangular, take
    the smallest (adjacency bits, op codes), bits in NAS-Bench-101's generator order. Exact, not a
    hash. (Isomorphic labellings build networks whose channel splits can differ slightly, a
    quirk of NAS-Bench-101's builder; the benchmark reports one result per class.)
    """
    permuted, inv, bits = _relabellings(np.asarray(adj, np.int8))
    op_arr = np.asarray([0, *ops, 0], np.int64)[inv[:, 1:-1]]
    best = np.lexsort(np.concatenate([bits[:, None], op_arr], axis=1).T[::-1])[0]
    return permuted[best].astype(np.int8), op_arr[best].tolist()


def class_keys(adj: np.ndarray) -> np.ndarray:
    """Return the canonical integer key of every op labelling of one full DAG.

    Key = (vertex count, adjacency bits, op digits) packed in an int64 and minimised over the
    upper-triangular relabellings: equal keys = isomorphic cells, and decoding a key gives the
    ``canonical`` labelling.
    """
    v = len(adj)
    n = v - 2
    _, inv, bits = _relabellings(adj)
    labellings = list(itertools.product(range(NUM_OPS), repeat=n))
    labels = np.array(labellings, np.int64).reshape(len(labellings), n)
    # Op digits of each relabelling: new interior position k holds the op of old vertex inv[k].
    moved = labels[:, inv[:, 1:-1] - 1]
    op_code = (moved * NUM_OPS ** np.arange(n - 1, -1, -1, dtype=np.int64)).sum(axis=-1)
    keys = ((v << 21) + bits[None, :]) * OP_SPAN + op_code  # (labellings, relabellings)
    return keys.min(axis=1)


def enumerate_classes(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES) -> np.ndarray:
    """Return the sorted canonical keys of every valid cell (NAS-Bench-101's generation procedure)."""
    found = []
    for v in range(2, max_vertices + 1):
        iu = np.triu_indices(v, 1)
        m = len(iu[0])
        codes = np.arange(1 << m, dtype=np.int64)
        bits = (codes[:, None] >> np.arange(m - 1, -1, -1)) & 1
        codes, bits = codes[bits.sum(axis=1) <= max_edges], bits[bits.sum(axis=1) <= max_edges]
        mats = np.zeros((len(codes), v, v), np.int8)
        mats[:, iu[0], iu[1]] = bits
        has_out = mats.any(axis=2)
        has_in = mats.any(axis=1)
        full = has_out[:, :-1].all(axis=1) & has_in[:, 1:].all(axis=1)
        for adj in mats[full]:
            found.append(np.unique(class_keys(adj)))
    return np.unique(np.concatenate(found))


def decode_key(key: int) -> tuple[np.ndarray, list[int]]:
    """Return (adjacency, op codes) of a canonical key."""
    rest, op_code = divmod(key, OP_SPAN)
    v, bits = rest >> 21, rest & ((1 << 21) - 1)
    ops = [(op_code // NUM_OPS ** (v - 3 - k)) % NUM_OPS for k in range(v - 2)]
    adj = ((bits & bit_weights(v)) != 0).astype(np.int8)
    return adj, ops


def hash_module(adj: np.ndarray, ops: list[int]) -> str:
    """Return NAS-Bench-101's fingerprint of a pruned cell (its ``graph_util.hash_module``).

    Iterated neighbourhood hashing (Weisfeiler-Lehman style) over (out-degree, in-degree, label),
    labels -1 input, -2 output, op codes inside: the key of the official dataset's records.
    """
    import hashlib

    v = len(adj)
    labels = [-1, *ops, -2]
    hashes = [hashlib.md5(str(h).encode()).hexdigest()
              for h in zip(adj.sum(axis=1).tolist(), adj.sum(axis=0).tolist(), labels, strict=True)]
    for _ in range(v):
        hashes = [hashlib.md5(("".join(sorted(hashes[w] for w in range(v) if adj[w, k])) + "|"
                               + "".join(sorted(hashes[w] for w in range(v) if adj[k, w])) + "|"
                               + hashes[k]).encode()).hexdigest() for k in range(v)]
    return hashlib.md5(str(sorted(hashes)).encode()).hexdigest()
