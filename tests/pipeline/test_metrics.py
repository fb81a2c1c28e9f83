"""Metrics pinned on small hand-computed cases."""

from __future__ import annotations

import math

import pytest

from pipeline.metrics import kendall_tau, mean_distance, op_entropy, recall_top, shrink_index, space_metrics
from spaces.toy import ToySpace

A, B, C = "width=8;activation=relu;depth=1", "width=32;activation=relu;depth=1", "width=128;activation=tanh;depth=3"


def test_shrink_index_by_hand() -> None:
    full = [0.0, 10.0, 20.0, 30.0]  # mean 15, best 30: headroom 15
    # Q = (25 - 15) / 15 = 2/3; R = 1 - log 2 / log 16 = 3/4.
    assert shrink_index([20.0, 30.0], full, 2, 16) == pytest.approx(0.5)
    assert shrink_index([30.0], full, 1, 16) == pytest.approx(1.0)
    assert shrink_index(full, full, 16, 16) == pytest.approx(0.0)
    assert math.isnan(shrink_index([], full, 0, 16))


def test_recall_top_by_hand() -> None:
    truth = {f"a{i}": float(i) for i in range(100)}
    assert recall_top(["a99", "a98", "a0"], truth, 0.01) == 1.0  # top 1% = {a99}
    assert recall_top(["a99", "a0"], truth, 0.05) == pytest.approx(1 / 5)  # top 5% = a95..a99


def test_kendall_tau_by_hand() -> None:
    assert kendall_tau([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 concordant, 1 discordant
    assert math.isnan(kendall_tau([1], [2]))


def test_mean_distance_and_entropy_by_hand() -> None:
    space = ToySpace()
    # d(A,B) = 1, d(A,C) = 3, d(B,C) = 3 -> mean 7/3.
    assert mean_distance(space, [A, B, C]) == pytest.approx(7 / 3)
    assert mean_distance(space, [A]) == 0.0
    # width: 3 distinct of 3 -> 1; activation: {relu: 2, tanh: 1}; depth: {1: 2, 3: 1}.
    two_one = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(3)
    assert op_entropy(space, [A, B, C]) == pytest.approx((1 + 2 * two_one) / 3)
    assert op_entropy(space, [A]) == 0.0


def test_space_metrics_with_truth() -> None:
    space = ToySpace()
    archs = [space.to_str(a) for a in sorted(space.sample_unique(27, __import__("numpy").random.default_rng(0)))]
    truth = {a: float(i) for i, a in enumerate(archs)}
    best = archs[-1]
    out = space_metrics(space, [best, archs[0]], 2, {best: 5.0, archs[0]: 1.0}, truth)
    assert out["size"] == 2 and out["fraction"] == pytest.approx(2 / 27)
    assert out["gt_best"] == 26.0 and out["regret"] == 0.0 and out["gt_mean"] == 13.0
    assert out["recall_top1pct"] == 1.0 and out["recall_top5pct"] == pytest.approx(1 / 2)
    assert out["kendall_tau"] == pytest.approx(1.0)
    assert "gt_mean" not in space_metrics(space, [best], 1)
