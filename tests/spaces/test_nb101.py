"""NAS-Bench-101 golden facts: the class count, canonical forms, edit distance, network, converter."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.convert_nb101 import main as convert_main
from pipeline.datasets import BenchmarkOnly
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from spaces import InvalidArchError
from spaces.costs import count_params
from spaces.nb101 import NB101_SIZE, OPS, NB101Space, graph
from tests.conftest import shared_file

S = NB101Space()
CHAIN = "ops=c3-c1-mp;adj=01-12-23-34"
# The NAS-Bench-101 paper's example cell (input feeding four branches, one of two 3x3 convs).
PAPER = ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
          [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
         ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output"])


def test_size_is_the_published_count() -> None:
    # NAS-Bench-101: 423,624 unique cells with <= 7 vertices and <= 9 edges; ours is exact
    # isomorphism over the same generation procedure, enumerated in a few seconds.
    assert S.size() == NB101_SIZE == 423_624


def test_relabelled_cells_share_one_canonical_string() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        adj, ops = graph.decode_key(int(rng.choice(graph.enumerate_classes(5))))
        v = len(adj)
        perm = [0, *(rng.permutation(v - 2) + 1), v - 1]
        relabelled = np.zeros_like(adj)
        relabelled[np.ix_(perm, perm)] = adj
        inverse = np.argsort(perm)
        moved = [ops[inverse[k] - 1] for k in range(1, v - 1)]
        if np.tril(relabelled).any():
            continue  # not a topological labelling: not a spec NAS-Bench-101 accepts
        a = S.from_spec(adj, ["input", *[OPS[o] for o in ops], "output"])
        b = S.from_spec(relabelled, ["input", *[OPS[o] for o in moved], "output"])
        assert S.to_str(a) == S.to_str(b)
        assert graph.hash_module(*_codes(a)) == graph.hash_module(*_codes(b))


def _codes(arch: tuple) -> tuple[np.ndarray, list[int]]:
    matrix, ops = S.to_spec(arch)
    return np.asarray(matrix), [OPS.index(o) for o in ops[1:-1]]


def test_from_spec_prunes_dangling_vertices() -> None:
    matrix = np.zeros((5, 5), int)
    matrix[0, 1] = matrix[1, 4] = matrix[0, 2] = matrix[2, 3] = 1  # vertex 3 reaches nothing
    arch = S.from_spec(matrix, ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"])
    assert S.to_str(arch) == "ops=c3;adj=01-12"
    with pytest.raises(InvalidArchError, match="no input->output path"):
        S.from_spec(np.zeros((3, 3), int), ["input", "maxpool3x3", "output"])
    with pytest.raises(InvalidArchError, match="off every input->output path"):
        S.from_str("ops=c3-c1;adj=01-13")


@pytest.mark.parametrize("text, match", [
    ("ops=c3-c9;adj=01-12-23", "op 'c9'"), ("ops=c3;adj=0-12", "digit pairs"), ("c3;01", "not of the form"),
    ("ops=c3;adj=02-01", "sorted and distinct"), ("ops=c3-c3-c3-c3-c3-c3;adj=01", "at most 7"),
])
def test_bad_strings_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(InvalidArchError, match=match):
        S.from_str(text)


def test_edit_distance_counts_ops_edges_and_vertices() -> None:
    chain = S.from_str(CHAIN)
    assert S.distance(chain, S.from_str("ops=c3-c3-mp;adj=01-12-23-34")) == 1  # one op
    assert S.distance(chain, S.from_str("ops=c3-c1-mp;adj=01-04-12-23-34")) == 1  # one edge
    # Dropping the middle vertex: delete it (1) and its two edges (2), add the bypass edge (1).
    assert S.distance(chain, S.from_str("ops=c3-mp;adj=01-12-23")) == 4
    # Isomorphic relabellings are distance 0 (two parallel branches listed in either order).
    assert S.distance(S.from_str("ops=c3-mp;adj=01-02-13-23"), S.canonical(S.from_str("ops=mp-c3;adj=01-02-13-23"))) == 0


def test_neighbours_are_one_edit_and_cover_edge_flips() -> None:
    chain = S.from_str(CHAIN)
    names = [S.to_str(n) for n in S.neighbors(chain)]
    assert "ops=c3-c3-mp;adj=01-12-23-34" in names and "ops=c3-c1-mp;adj=01-04-12-23-34" in names
    # 3 vertices x 2 other ops + 6 forward edges that can be added (no edge can be removed).
    assert len(names) == 12
    assert all(S.distance(chain, n) == 1 for n in S.neighbors(chain))


def test_network_of_the_paper_cell_runs() -> None:
    arch = S.from_spec(*PAPER)
    model = S.build_model(arch, (3, 32, 32), 10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert count_params(model) > 0 and len(S.to_spec(arch)[1]) == 7


def test_parameter_counts_match_nas_bench_suite_zero() -> None:
    """Our network reproduces the parameter counts of 100 NB101 cells (NASLib tuples, given labelling)."""
    data = json.loads(shared_file("zc_nasbench101.json").read_text())["nasbench101"]["cifar10"]
    names = {2: "maxpool3x3", 3: "conv1x1-bn-relu", 4: "conv3x3-bn-relu"}  # NASLib's op codes
    from spaces.nb101.model import NB101Network

    for key, entry in list(data.items())[:100]:
        values = [int(x) for x in key.strip("()").split(",")]
        codes = [OPS.index(names[c]) for c in values[50:55]]
        adj, ops = graph.prune(np.array(values[:49], np.int8).reshape(7, 7), codes)
        net = NB101Network(adj, ["input", *[OPS[o] for o in ops], "output"], 3, 10)
        assert count_params(net) == round(entry["params"] * 1e6)


def _record(module_hash: str, epochs: int, spec: tuple, val: float, test: float, params: int) -> bytes:
    """Encode one release record as NAS-Bench-101 writes it (JSON with a base64 protobuf)."""
    def double(field: int, value: float) -> bytes:
        return bytes([field << 3 | 1]) + struct.pack("<d", value)

    def message(field: int, body: bytes) -> bytes:
        return bytes([field << 3 | 2, len(body)]) + body

    evaluations = b"".join(message(1, double(1, e) + double(4, val) + double(5, test)) for e in (0.0, epochs / 2, epochs))
    metrics = evaluations + bytes([2 << 3, params & 0x7F | 0x80, params >> 7 & 0x7F | 0x80, params >> 14])
    matrix, ops = spec
    payload = json.dumps([module_hash, epochs, "".join(str(x) for row in matrix for x in row), ",".join(ops),
                          base64.b64encode(metrics).decode()]).encode()
    return struct.pack("<Q", len(payload)) + b"\0" * 4 + payload + b"\0" * 4


def test_converter_reads_the_release_format(tmp_path: Path) -> None:
    source = tmp_path / "nasbench_only108.tfrecord"
    chain = S.to_spec(S.from_str(CHAIN))
    source.write_bytes(b"".join([
        _record("aa", 108, PAPER, 0.94, 0.93, 300_000), _record("aa", 108, PAPER, 0.92, 0.91, 300_000),
        _record("bb", 108, chain, 0.90, 0.89, 200_000), _record("bb", 36, chain, 0.5, 0.5, 200_000),
    ]))
    out = tmp_path / "nb101.csv"
    assert convert_main([str(source), "--out", str(out)]) == 0
    evaluator = BenchmarkEvaluator(S, BenchmarkOnly("cifar10"), str(out))
    paper = evaluator.evaluate(S.from_spec(*PAPER))
    assert paper["val_acc"] == pytest.approx(93.0) and paper["test_acc"] == pytest.approx(92.0)
    assert evaluator.evaluate(S.from_str(CHAIN))["params"] == 200_000
    assert convert_main([str(source), "--out", str(out), "--epochs", "12"]) == 2
    assert convert_main([str(tmp_path / "missing.tfrecord"), "--out", str(out)]) == 2


@pytest.mark.slow
def test_official_hash_separates_exactly_the_canonical_classes() -> None:
    """NAS-Bench-101's fingerprint over all 423,624 canonical cells: no two classes collide."""
    hashes = {graph.hash_module(*graph.decode_key(int(k))) for k in graph.enumerate_classes()}
    assert len(hashes) == NB101_SIZE
