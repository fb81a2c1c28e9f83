"""The search-space contract and a categorical (product-of-choices) implementation.

An architecture is an immutable, hashable value (here a tuple of option names), never an
``nn.Module``. Its string (``to_str``) is its identity in every file the pipeline writes.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from spaces.errors import InvalidArchError

Arch = tuple[str, ...]


class SearchSpace(ABC):
    """Contract every space honours; the contract tests run it over every conf/space/*.yaml.

    - ``size()``: exact number of distinct architectures (may be huge).
    - ``sample(rng)``: one architecture drawn uniformly.
    - ``check(arch)`` returns an ``InvalidArchError`` or None; ``validate(arch)`` raises it.
    - ``encode(arch)``: fixed-length float vector; ``codes(archs)``: bulk integer matrix.
    - ``distance(a, b)``: structural distance, 0 iff same canonical form.
    - ``neighbors(arch)``: every valid arch at distance 1, in a deterministic order.
    - ``to_str``/``from_str``: exact round trip.
    - ``canonical(arch)``: representative of the isomorphism class (identity by default).
    - ``pairs_within(archs, radius)``: all index pairs at distance <= radius, in bulk.
    - ``build_model(arch, input_shape, num_classes)``: the torch network of an arch.
    """

    name: str = "space"

    @abstractmethod
    def size(self) -> int:
        """Return the exact number of architectures."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw one architecture uniformly at random."""

    @abstractmethod
    def check(self, arch: Any) -> InvalidArchError | None:
        """Return why ``arch`` is not in the space, or None."""

    @abstractmethod
    def encode(self, arch: Arch) -> np.ndarray:
        """Return the fixed-length numeric encoding of ``arch``."""

    @abstractmethod
    def distance(self, a: Arch, b: Arch) -> int:
        """Return the structural distance between two architectures."""

    @abstractmethod
    def neighbors(self, arch: Arch) -> list[Arch]:
        """Return every architecture at distance 1, deterministically ordered."""

    @abstractmethod
    def to_str(self, arch: Arch) -> str:
        """Return the canonical string identity of ``arch``."""

    @abstractmethod
    def from_str(self, text: str) -> Arch:
        """Parse a string produced by ``to_str``; raise InvalidArchError otherwise."""

    @abstractmethod
    def pairs_within(self, archs: Sequence[Arch], radius: int) -> np.ndarray:
        """Return an (E, 2) array of index pairs i < j with distance <= radius."""

    @abstractmethod
    def build_model(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Build the torch network for ``arch``."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Return the constructor arguments (with ``_target_``) that rebuild this space."""

    def validate(self, arch: Any) -> Arch:
        """Return ``arch`` if it is valid, else raise its InvalidArchError."""
        error = self.check(arch)
        if error is not None:
            raise error
        return arch

    def canonical(self, arch: Arch) -> Arch:
        """Return the representative of ``arch``'s isomorphism class."""
        return self.validate(arch)

    def costs(self, arch: Arch, input_shape: tuple[int, ...], num_classes: int) -> tuple[int, int]:
        """Return (params, FLOPs at batch 1) of the arch's network (torch's FLOP counter)."""
        from spaces.costs import count_flops, count_params

        model = self.build_model(arch, input_shape, num_classes)
        return count_params(model), count_flops(model, input_shape)

    def equivalence_key(self, arch: Arch) -> str:
        """Return a key shared by archs that compute the same function (train one, map the rest)."""
        return self.to_str(self.canonical(arch))

    def sample_unique(self, n: int, rng: np.random.Generator, exclude: Iterable[str] = ()) -> list[Arch]:
        """Draw up to ``n`` distinct architectures uniformly, skipping ``exclude`` strings."""
        seen = set(exclude)
        n = min(n, self.size() - len(seen))
        out: list[Arch] = []
        while len(out) < n:
            arch = self.canonical(self.sample(rng))
            key = self.to_str(arch)
            if key not in seen:
                seen.add(key)
                out.append(arch)
        return out


class CategoricalSpace(SearchSpace):
    """A fixed list of decisions, each picking one option: Hamming geometry, one-hot codes."""

    def __init__(self, decisions: Sequence[str], options: Sequence[Sequence[str]]) -> None:
        if len(decisions) != len(options):
            raise ValueError(f"{len(decisions)} decisions but {len(options)} option lists")
        self.decisions = tuple(decisions)
        self.options = tuple(tuple(o) for o in options)
        self._index = [{name: i for i, name in enumerate(opts)} for opts in self.options]
        self._offsets = np.cumsum([0, *[len(o) for o in self.options]])

    def size(self) -> int:
        """Return the product of the option counts."""
        return math.prod(len(o) for o in self.options)

    def sample(self, rng: np.random.Generator) -> Arch:
        """Pick one option per decision uniformly."""
        return tuple(opts[int(rng.integers(len(opts)))] for opts in self.options)

    def check(self, arch: Any) -> InvalidArchError | None:
        """Return an error naming the first bad decision, or None."""
        if not isinstance(arch, tuple) or len(arch) != len(self.decisions):
            return InvalidArchError(
                f"{self.name}: expected a tuple of {len(self.decisions)} options, got {arch!r}"
            )
        for pos, (value, index) in enumerate(zip(arch, self._index, strict=True)):
            if value not in index:
                return self._option_error(pos, value)
        return None

    def _option_error(self, pos: int, value: Any) -> InvalidArchError:
        """Build the error for a bad option at decision ``pos``."""
        allowed = ", ".join(self.options[pos])
        return InvalidArchError(
            f"{self.name}: {self.decisions[pos]} (decision {pos}): {value!r} is not one of {allowed}"
        )

    def codes(self, archs: Sequence[Arch]) -> np.ndarray:
        """Return the (N, D) matrix of option indices."""
        table = np.empty((len(archs), len(self.decisions)), dtype=np.int64)
        for row, arch in enumerate(archs):
            table[row] = [index[v] for v, index in zip(arch, self._index, strict=True)]
        return table

    def to_compact(self, arch: Arch) -> tuple[int, ...]:
        """Return the option indices of ``arch`` (the compact form exchange files use)."""
        return tuple(int(i) for i in self.codes([self.validate(arch)])[0])

    def from_compact(self, compact: Sequence[int]) -> Arch:
        """Inverse of ``to_compact``, with an error naming a bad index."""
        if len(compact) != len(self.options):
            raise InvalidArchError(f"{self.name}: compact form needs {len(self.options)} indices, got {list(compact)}")
        for pos, (i, opts) in enumerate(zip(compact, self.options, strict=True)):
            if not isinstance(i, int | np.integer) or not 0 <= i < len(opts):
                raise InvalidArchError(f"{self.name}: {self.decisions[pos]}: index {i!r} is not in 0..{len(opts) - 1}")
        return tuple(opts[i] for i, opts in zip(compact, self.options, strict=True))

    def encode(self, arch: Arch) -> np.ndarray:
        """Return the concatenated one-hot vector of ``arch``."""
        vec = np.zeros(int(self._offsets[-1]), dtype=np.float32)
        vec[self._offsets[:-1] + self.codes([self.validate(arch)])[0]] = 1.0
        return vec

    def distance(self, a: Arch, b: Arch) -> int:
        """Return the number of decisions on which ``a`` and ``b`` differ."""
        self.validate(a), self.validate(b)
        return sum(x != y for x, y in zip(a, b, strict=True))

    def neighbors(self, arch: Arch) -> list[Arch]:
        """Change one decision at a time, decisions and options in declaration order."""
        self.validate(arch)
        out = []
        for pos, opts in enumerate(self.options):
            out += [arch[:pos] + (o,) + arch[pos + 1 :] for o in opts if o != arch[pos]]
        return out

    def restrict(self, allowed: Sequence[Sequence[str]]) -> list[tuple[str, ...]]:
        """Validate a per-decision option restriction and return it in declaration order."""
        if len(allowed) != len(self.decisions):
            raise InvalidArchError(f"{self.name}: restriction needs {len(self.decisions)} option lists, got {len(allowed)}")
        out = []
        for pos, opts in enumerate(allowed):
            bad = [o for o in opts if o not in self._index[pos]]
            if bad or not opts:
                raise self._option_error(pos, bad[0] if bad else "(no option)")
            out.append(tuple(o for o in self.options[pos] if o in set(opts)))
        return out

    def sample_restricted(self, allowed: Sequence[Sequence[str]], rng: np.random.Generator) -> Arch:
        """Pick one allowed option per decision uniformly."""
        return tuple(opts[int(rng.integers(len(opts)))] for opts in self.restrict(allowed))

    def enumerate_restricted(self, allowed: Sequence[Sequence[str]]) -> list[Arch]:
        """Return every arch of the restricted product space, in lexicographic option order."""
        return list(itertools.product(*self.restrict(allowed)))

    def graph_ops(self) -> tuple[str, ...]:
        """Return the node labels of the graph view: input, output, then every (decision, option)."""
        return ("input", "output", *(f"{d}={o}" for d, opts in zip(self.decisions, self.options, strict=True)
                                     for o in opts))

    def graphs(self, archs: Sequence[Arch]) -> tuple[np.ndarray, np.ndarray]:
        """Return the graph view of ``archs``: a chain input -> one node per decision -> output.

        Adjacency ``[N, V, V]`` (upper-triangular, node order topological) and node labels
        ``[N, V]`` indexing ``graph_ops()``; the sequence view a learned embedding reads.
        """
        n, v = len(archs), len(self.decisions) + 2
        adj = np.zeros((n, v, v), np.int8)
        adj[:, np.arange(v - 1), np.arange(1, v)] = 1
        labels = np.zeros((n, v), np.int64)
        labels[:, -1] = 1
        labels[:, 1:-1] = self.codes(archs) + 2 + self._offsets[:-1]
        return adj, labels

    def pairs_within(self, archs: Sequence[Arch], radius: int) -> np.ndarray:
        """Return index pairs at Hamming distance <= radius, by hashing (no all-pairs loop)."""
        return hamming_pairs(self.codes(archs), [len(o) for o in self.options], radius)

    def automaton_start(self) -> int:
        """Return the start state of the automaton that accepts exactly the valid option sequences."""
        return 0

    def automaton_step(self, decision: int, state: int, option: int) -> int | None:
        """Return the state after picking option index ``option`` at ``decision`` (None = invalid)."""
        return 0

    def automaton_accepts(self, state: int) -> bool:
        """Tell whether a complete sequence ending in ``state`` is a valid arch."""
        return True

    def to_str(self, arch: Arch) -> str:
        """Write ``decision=option`` pairs joined by semicolons (CSV-safe)."""
        self.validate(arch)
        return ";".join(f"{d}={v}" for d, v in zip(self.decisions, arch, strict=True))

    def from_str(self, text: str) -> Arch:
        """Parse ``decision=option,...`` with an error naming the bad part."""
        if not isinstance(text, str):
            raise InvalidArchError(f"{self.name}: expected an architecture string, got {text!r}")
        parts = [p.partition("=") for p in text.split(";")]
        names = tuple(p[0] for p in parts)
        if names != self.decisions or any(not sep for _, sep, _ in parts):
            raise InvalidArchError(
                f"{self.name}: {text!r} is not of the form "
                + ";".join(f"{d}=<option>" for d in self.decisions)
            )
        return self.validate(tuple(p[2] for p in parts))


def hamming_pairs(codes: np.ndarray, cardinalities: Sequence[int], radius: int) -> np.ndarray:
    """Return sorted unique pairs (i < j) of rows differing in at most ``radius`` columns.

    Rows that differ only inside a set S of ``radius`` columns agree on every other column, so
    masking S and grouping equal keys finds them; the union over all S of size ``radius`` is exact.
    A row's key is a sum of per-column terms, so masking S subtracts |S| terms (no pass over the
    other columns). Work is proportional to N log N per column subset plus the output, never N^2.
    """
    n, d = codes.shape
    if n < 2 or radius < 0:
        return _unique_pairs(np.empty((0, 2), dtype=np.int64), n)
    radius = min(radius, d)
    terms, exact = _column_terms(codes, cardinalities)
    full = terms.sum(axis=1, dtype=np.uint64)
    found = []
    for masked in itertools.combinations(range(d), radius):
        keys = full - terms[:, list(masked)].sum(axis=1, dtype=np.uint64) if masked else full
        pairs = _equal_key_pairs(keys)
        if not exact and len(pairs):  # hashed keys: drop the (astronomically rare) collisions
            pairs = pairs[(codes[pairs[:, 0]] != codes[pairs[:, 1]]).sum(axis=1) <= radius]
        found.append(pairs)
    return _unique_pairs(np.concatenate(found), n)


def _column_terms(codes: np.ndarray, cardinalities: Sequence[int]) -> tuple[np.ndarray, bool]:
    """Return per-column key terms (uint64, summing to a row key) and whether keys are exact.

    Bit-packed (exact) when all columns fit in 64 bits; otherwise random 64-bit values per
    (column, option), whose sums collide with probability ~2^-64 and are verified by the caller.
    """
    bits = [max(1, int(c - 1).bit_length()) for c in cardinalities]
    if sum(bits) <= 64:
        shifts = np.concatenate([[0], np.cumsum(bits)[:-1]]).astype(np.uint64)
        return codes.astype(np.uint64) << shifts, True
    rng = np.random.default_rng(0x5EED)
    table = rng.integers(0, np.iinfo(np.uint64).max, size=(codes.shape[1], max(cardinalities)),
                         dtype=np.uint64, endpoint=True)
    return table[np.arange(codes.shape[1]), codes], False


def _equal_key_pairs(keys: np.ndarray) -> np.ndarray:
    """Return all pairs of row indices whose keys are equal."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
    counts = np.diff(np.append(starts, len(keys)))
    if counts.max(initial=1) < 2:
        return np.empty((0, 2), dtype=np.int64)
    group_of = np.repeat(np.arange(len(starts)), counts)
    pos_in_group = np.arange(len(keys)) - starts[group_of]
    pairs = []
    # Offsets loop over group sizes, not over pairs: each pass emits every pair k apart.
    for k in range(1, int(counts.max())):
        left = np.nonzero(pos_in_group + k < counts[group_of])[0]
        pairs.append(np.stack([order[left], order[left + k]], axis=1))
    return np.concatenate(pairs)


def _unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Return pairs as sorted, de-duplicated (i < j) rows."""
    if len(pairs) == 0:
        return np.empty((0, 2), dtype=np.int64)
    lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    flat = np.unique(lo.astype(np.int64) * n + hi)
    return np.stack([flat // n, flat % n], axis=1)


@runtime_checkable
class SupernetSpace(Protocol):
    """Optional capability: the space trains a weight-sharing supernet (its package holds the module)."""

    def build_supernet(self, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """Return the supernet; ``forward(x, codes)`` runs the path of one arch's option indices."""

    def load_subnet(self, net: Any, supernet: Any, codes: Sequence[int]) -> Any:
        """Copy the supernet's weights of path ``codes`` into ``net`` (that arch's ``build_model``) and return it."""


@runtime_checkable
class LatencySpace(Protocol):
    """Optional capability: the space predicts latency from a per-block table it can time on this machine."""

    def measure_latency_table(self, input_shape: tuple[int, ...], num_classes: int, device: str) -> Any:
        """Time every block on ``device`` and return the table (with ``save(path)``)."""

    def load_latency_table(self, path: Any) -> Any:
        """Read a table written by the table's ``save``."""

    def latency(self, arch: Arch, input_shape: tuple[int, ...], table: Any) -> float:
        """Return the predicted milliseconds of ``arch`` from ``table``."""

