"""Zero-cost proxies pinned on tiny fixed networks, plus the degenerate-network path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.datasets import Digits
from pipeline.evaluators.base import EvaluatorError
from pipeline.evaluators.proxies import (
    EnsembleEvaluator,
    ProxyEvaluator,
    grad_norm,
    naswot,
    percentile,
    snip,
    synflow,
    zico,
)
from spaces.nb201 import NB201Space
from spaces.toy import ToySpace


def linear(weight: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return layer


def test_zico_by_hand() -> None:
    # Zero weights give uniform softmax; dL/dW = (p - onehot(y)) x = [-x/2, x/2] for label 0.
    model = linear([[0.0], [0.0]])
    batches = [(torch.tensor([[1.0]]), torch.tensor([0])), (torch.tensor([[2.0]]), torch.tensor([0]))]
    # Per element: grads (-0.5, -1) -> mean|g| 0.75, std 0.5/sqrt(2); two elements alike.
    expected = math.log(2 * 0.75 / (0.5 / math.sqrt(2)))
    assert zico(model, batches) == pytest.approx(expected)
    with pytest.raises(EvaluatorError, match="at least 2 batches"):
        zico(model, batches[:1])


def test_synflow_by_hand_and_signs_restored() -> None:
    w1, w2 = [[1.0, -2.0], [0.5, 3.0]], [[-1.0, 2.0]]
    model = nn.Sequential(linear(w1), linear(w2))
    # With |W|: R = 1^T |W2| |W1| 1 = 1*3 + 2*3.5 = 10; each layer contributes R to sum |w dR/dw|.
    assert synflow(model, (2,)) == pytest.approx(20.0)
    assert model[0].weight.tolist() == w1 and model[1].weight.dtype == torch.float32


def test_naswot_by_hand() -> None:
    # Two inputs whose 4 ReLU codes differ in h = 2 units: K = [[4, 2], [2, 4]], det 12.
    x = torch.tensor([[1.0, 1.0, -1.0, 1.0], [1.0, -1.0, 1.0, 1.0]])
    assert naswot(nn.ReLU(), x) == pytest.approx(math.log(12.0))
    # Identical codes make K singular: the worst possible score, never a good one.
    assert naswot(nn.ReLU(), torch.ones(2, 4)) == float("-inf")


def test_snip_and_grad_norm_by_hand() -> None:
    model = linear([[1.0, 0.0], [0.0, 1.0]])
    x, y = torch.tensor([[1.0, 0.0]]), torch.tensor([1])
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    grad = torch.outer(p - torch.tensor([0.0, 1.0]), x[0])  # dL/dW
    assert snip(model, (x, y)) == pytest.approx(float((model.weight.detach() * grad).abs().sum()))
    assert grad_norm(model, (x, y)) == pytest.approx(float(grad.norm()))


def test_proxies_are_deterministic_and_order_sizes() -> None:
    space = ToySpace()
    small, big = space.from_str("width=32;activation=relu;depth=1"), space.from_str("width=128;activation=relu;depth=3")
    # NASWOT needs more ReLU units than inputs per batch (else K is singular): 32 units, batches of 8.
    for proxy in ("zico", "synflow", "naswot", "snip", "grad_norm", "params", "flops"):
        evaluator = ProxyEvaluator(space, Digits(), proxy, seed=0, batch_size=8)
        first = evaluator.evaluate(small)[proxy]
        assert first == ProxyEvaluator(space, Digits(), proxy, seed=0, batch_size=8).evaluate(small)[proxy]
        assert math.isfinite(first)
    for proxy in ("params", "flops", "synflow", "naswot"):
        evaluator = ProxyEvaluator(space, Digits(), proxy, seed=0, batch_size=8)
        assert evaluator.evaluate(big)[proxy] > evaluator.evaluate(small)[proxy]


def test_all_none_cell_is_recorded_worst_with_a_warning(tmp_path: Path) -> None:
    from pipeline.context import StageContext
    from pipeline.stages import evaluate

    space = NB201Space(C=4, N=1)
    none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    evaluator = ProxyEvaluator(space, Digits(), "naswot", seed=0)
    assert evaluator.evaluate(space.from_str(none))["naswot"] == float("-inf")
    ctx = StageContext(space, evaluator, np.random.default_rng(0), tmp_path, 0, "evaluate",
                       tmp_path / "round_000" / "evaluate", 10)
    ctx.save("proposals", [{"arch": none, "origin": "uniform"}])
    with pytest.warns(RuntimeWarning, match="naswot was -inf; recorded as the worst score"):
        evaluate.run(ctx, evaluate.Cfg(progress=False))
    row = ctx.load("scores")[0]
    assert row["score"] == float("-inf") and "worst" in row["note"]


def test_ensemble_is_a_rank_average() -> None:
    assert percentile(2.0, np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.375)
    assert percentile(float("nan"), np.array([1.0])) == 0.0
    space = ToySpace()
    evaluator = EnsembleEvaluator(space, Digits(), ["params", "synflow"], reference_size=8, seed=0)
    big = evaluator.evaluate(space.from_str("width=128;activation=relu;depth=3"))
    small = evaluator.evaluate(space.from_str("width=8;activation=relu;depth=1"))
    assert 0.0 <= small["ensemble"] < big["ensemble"] <= 1.0
    with pytest.raises(EvaluatorError, match="non-empty subset"):
        EnsembleEvaluator(space, Digits(), ["magic"])


def test_unknown_proxy_is_named() -> None:
    with pytest.raises(EvaluatorError, match="evaluator.proxy='magic' is not one of zico"):
        ProxyEvaluator(ToySpace(), Digits(), "magic")
