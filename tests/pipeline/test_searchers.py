"""Searchers (REA, local search, random, TPE, EPNAS-style) through the domain contract, on exhaustive spaces."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from pipeline.searchers import SEARCHERS, FullDomain, Oracle, ShrunkDomain, rea
from spaces.base import CategoricalSpace
from spaces.shrunk import Pocket, ShrunkSpace


class Grid(CategoricalSpace):
    """4 decisions x 4 options = 256 archs; no network (searchers never build one)."""

    name = "grid"

    def __init__(self) -> None:
        super().__init__([f"d{i}" for i in range(4)], [("a", "b", "c", "d")] * 4)

    def build_model(self, arch: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"_target_": "tests.pipeline.test_searchers.Grid"}


WEIGHTS = np.array([[0.0, 1.0, 3.0, 2.0], [2.0, 0.0, 1.0, 4.0], [1.0, 5.0, 0.0, 2.0], [3.0, 2.0, 1.0, 0.0]])


def score(space: Grid):
    """An additive objective whose unique optimum is c/d/b/a."""
    return lambda arch: float(WEIGHTS[np.arange(4), space.codes([space.from_str(arch)])[0]].sum())


@pytest.mark.parametrize("name", ["rea", "local_search", "tpe", "epnas"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_searcher_finds_the_optimum_with_half_the_space(name: str, seed: int) -> None:
    space = Grid()
    run = SEARCHERS[name]
    kwargs = {"population": 20, "tournament": 5} if name == "rea" else {}
    oracle = run(FullDomain(space), Oracle(score(space), 128), np.random.default_rng(seed), **kwargs)
    assert oracle.spent == 128
    assert oracle.best()[0] == "d0=c;d1=d;d2=b;d3=a"


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_budget_is_counted_like_the_pipeline_and_known_scores_are_free(name: str) -> None:
    space = Grid()
    known = {"d0=a;d1=a;d2=a;d3=a": 6.0, "d0=c;d1=d;d2=b;d3=a": 15.0}
    oracle = SEARCHERS[name](FullDomain(space), Oracle(score(space), 40, known), np.random.default_rng(0))
    assert oracle.spent == 40 and len(oracle.cache) >= 40
    assert len({a for a, _ in oracle.history}) == 40 and not {a for a, _ in oracle.history} & set(known)
    assert oracle.best() == ("d0=c;d1=d;d2=b;d3=a", 15.0)


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_searchers_inside_a_shrunk_space_stay_inside_and_exhaust_it(name: str) -> None:
    space = Grid()
    members = [space.to_str(a) for a in itertools.islice(itertools.product(*space.options), 0, 256, 9)]
    shrunk = ShrunkSpace(space, [Pocket(0, members[0], None, 2, tuple((a, None) for a in members))])
    oracle = SEARCHERS[name](ShrunkDomain(shrunk), Oracle(score(space), 100), np.random.default_rng(0))
    assert {a for a, _ in oracle.history} <= set(members)
    assert oracle.spent == len(members)  # the domain holds fewer archs than the budget
    best = max(members, key=score(space))
    assert oracle.best()[0] == best


def test_feasibility_keeps_full_space_searchers_inside_the_budget() -> None:
    space = Grid()
    feasible = lambda a: not a.startswith("d0=c")  # noqa: E731
    for name in SEARCHERS:
        oracle = SEARCHERS[name](FullDomain(space, feasible), Oracle(score(space), 60), np.random.default_rng(1))
        assert all(feasible(a) for a, _ in oracle.history), name


def test_rea_respects_population_and_tournament() -> None:
    space = Grid()
    oracle = rea(FullDomain(space), Oracle(score(space), 30), np.random.default_rng(3), population=10, tournament=3)
    assert oracle.spent == 30


def test_epnas_scores_whole_batches_at_once_and_its_policy_learns() -> None:
    from pipeline.searchers.epnas import Policy, epnas

    space, calls = Grid(), []

    def many(archs: list[str]) -> list[float]:
        calls.append(len(archs))
        return [score(space)(a) for a in archs]

    oracle = epnas(FullDomain(space), Oracle(score(space), 45, score_many=many), np.random.default_rng(0), batch=10)
    assert calls == [10, 10, 10, 10, 5] and oracle.spent == 45
    policy = Policy(space, lr=0.5)
    archs = ["d0=c;d1=d;d2=b;d3=a", "d0=a;d1=b;d2=c;d3=d"]
    for _ in range(20):
        policy.step(archs, np.array([1.0, -1.0]))
    assert [space.options[d][int(np.argmax(p))] for d, p in enumerate(policy.probs())] == ["c", "d", "b", "a"]


def test_epnas_batches_go_through_the_executor(toy_table) -> None:
    from pipeline.datasets import Digits
    from pipeline.evaluators.benchmark import BenchmarkEvaluator
    from pipeline.executors import LocalExecutor
    from pipeline.searchers import evaluator_oracle
    from pipeline.searchers.epnas import epnas
    from spaces.toy import ToySpace

    class Counting(LocalExecutor):
        batches: list[int] = []

        def map(self, evaluator, archs):
            self.batches.append(len(archs))
            return super().map(evaluator, archs)

    space = ToySpace()
    evaluator = BenchmarkEvaluator(space, Digits(), str(toy_table))
    executor = Counting(workers=1)
    oracle = epnas(FullDomain(space), evaluator_oracle(evaluator, executor, 20), np.random.default_rng(0), batch=8)
    assert executor.batches == [8, 8, 4] and oracle.spent == 20
    assert all(value == evaluator.evaluate(space.from_str(a))["val_acc"] for a, value in oracle.history)
