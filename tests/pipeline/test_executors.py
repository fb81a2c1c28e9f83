"""Executors: order, retries, failures recorded (not raised), and Ray fan-out equal to local."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.context import StageContext
from pipeline.datasets import Digits
from pipeline.evaluators.base import EvaluatorError
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from pipeline.executors import Failure, LocalExecutor
from pipeline.stages import evaluate
from spaces.toy import ToySpace

BAD = "width=8;activation=tanh;depth=2"


class Faulty(BenchmarkEvaluator):
    """Table lookups that always fail on BAD and fail once on every other arch's first try."""

    def __init__(self, *args, flaky: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.flaky, self.seen = flaky, set()

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        key = self.space.to_str(arch)
        if key == BAD:
            raise RuntimeError("CUDA error: an illegal memory access\nwas encountered")
        if self.flaky and key not in self.seen:
            self.seen.add(key)
            raise OSError("transient")
        return super().evaluate(arch)


def archs(n: int = 6) -> list:
    space = ToySpace()
    picked = space.sample_unique(n, np.random.default_rng(0))
    return [space.from_str(BAD), *[a for a in picked if space.to_str(a) != BAD][: n - 1]]


def test_local_executor_retries_and_records_failures(toy_table: Path) -> None:
    evaluator = Faulty(ToySpace(), Digits(), str(toy_table))
    results = list(LocalExecutor(retries=1).map(evaluator, archs()))
    assert isinstance(results[0], Failure) and results[0].attempts == 2
    assert results[0].error == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert all(isinstance(r, dict) for r in results[1:])  # the transient fault was retried away
    no_retry = list(LocalExecutor(retries=0).map(Faulty(ToySpace(), Digits(), str(toy_table)), archs()))
    assert all(isinstance(r, Failure) for r in no_retry)


def context(tmp_path: Path, evaluator, executor) -> StageContext:  # type: ignore[no-untyped-def]
    ctx = StageContext(ToySpace(), evaluator, np.random.default_rng(0), tmp_path, 0, "evaluate",
                       tmp_path / "round_000" / "evaluate", 100, executor=executor)
    ctx.save("proposals", [{"arch": ToySpace().to_str(a), "origin": "uniform"} for a in archs()])
    return ctx


def test_evaluate_stage_records_a_failing_arch_as_worst(tmp_path: Path, toy_table: Path) -> None:
    ctx = context(tmp_path, Faulty(ToySpace(), Digits(), str(toy_table)), LocalExecutor(retries=1))
    with pytest.warns(RuntimeWarning, match="failed after 2 attempt"):
        metrics = evaluate.run(ctx, evaluate.Cfg(progress=False))
    rows = {r["arch"]: r for r in ctx.load("scores")}
    assert metrics["failed"] == 1 and rows[BAD]["score"] == float("-inf") and "illegal memory" in rows[BAD]["note"]


def test_all_failing_is_one_clear_error(tmp_path: Path, toy_table: Path) -> None:
    ctx = context(tmp_path, Faulty(ToySpace(), Digits(), str(toy_table)), LocalExecutor(retries=0))
    with pytest.warns(RuntimeWarning), pytest.raises(EvaluatorError, match="all 6 evaluations of round 0 failed"):
        evaluate.run(ctx, evaluate.Cfg(progress=False))


@pytest.mark.slow
def test_ray_executor_matches_local(toy_table: Path) -> None:
    pytest.importorskip("ray")
    from pipeline.executors import RayExecutor

    evaluator = Faulty(ToySpace(), Digits(), str(toy_table), flaky=False)
    local = list(LocalExecutor(retries=0).map(evaluator, archs(12)))
    executor = RayExecutor(address="local", batch_size=5, num_cpus=1, retries=1)
    try:
        remote = list(executor.map(evaluator, archs(12)))
    finally:
        executor.close()
    assert isinstance(remote[0], Failure) and remote[0].attempts == 2
    assert remote[1:] == local[1:]  # same results, same order


def test_worker_processes_give_the_in_process_results_in_order() -> None:
    from pipeline.evaluators.train import TrainEvaluator

    space = ToySpace()
    evaluator = TrainEvaluator(space, Digits(), seed=0, epochs=1)
    picked = archs(6)
    untimed = lambda results: [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in results]  # noqa: E731
    here = untimed(LocalExecutor(workers=1).map(evaluator, picked))
    pool = LocalExecutor(workers=2, spawn_after_s=0)
    try:
        assert pool.workers_for(evaluator) == 2
        assert untimed(pool.map(evaluator, picked)) == here and pool._pool is not None
    finally:
        pool.close()


def test_auto_workers_follow_the_evaluator_and_short_runs_stay_in_process() -> None:
    from pipeline.evaluators.train import TrainEvaluator
    from pipeline.threads import usable_cpus

    executor = LocalExecutor()
    train = TrainEvaluator(ToySpace(), Digits(), seed=0, epochs=1)
    assert executor.workers_for(train) == min(usable_cpus(), 8)
    train.device = __import__("torch").device("cuda")  # CUDA (or a table lookup, which has no device): this process
    assert executor.workers_for(train) == 1
    train.device = __import__("torch").device("cpu")
    list(executor.map(train, archs(2)))
    assert executor._pool is None  # far less than spawn_after_s of work: no process was started
    with pytest.raises(Exception, match="executor.workers=0 must be a positive integer or auto"):
        LocalExecutor(workers=0)


class KillsItsWorker(BenchmarkEvaluator):
    """A lookup that kills the worker process evaluating BAD (as the OOM killer would)."""

    @property
    def parallel(self) -> bool:
        return True

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        if self.space.to_str(arch) == BAD:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().evaluate(arch)


@pytest.mark.slow  # spawns three worker pools; default-suite time
def test_a_dead_worker_fails_its_arch_and_the_rest_are_evaluated(toy_table: Path) -> None:
    space = ToySpace()
    picked = [space.from_str(BAD), *[a for a in archs(6) if space.to_str(a) != BAD][:4]]
    evaluator = KillsItsWorker(space, Digits(), str(toy_table))
    pool = LocalExecutor(workers=2, spawn_after_s=0)
    try:
        results = list(pool.map(evaluator, picked))
    finally:
        pool.close()
    assert isinstance(results[0], Failure) and "worker process failed" in results[0].error
    assert results[1:] == [evaluator.evaluate(a) for a in picked[1:]]


class SwallowsCtrlC(BenchmarkEvaluator):
    """Receives Ctrl-C during its first evaluation, where a GC callback swallows it (as SQLAlchemy's did)."""

    def evaluate(self, arch):  # type: ignore[no-untyped-def]
        import contextlib
        import signal

        # As "Exception ignored in <weakref callback>": Python prints it and carries on.
        with contextlib.suppress(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        return super().evaluate(arch)


def test_a_swallowed_ctrl_c_still_stops_the_evaluations(toy_table: Path) -> None:
    import signal

    from pipeline import interrupts

    previous = signal.getsignal(signal.SIGINT)
    interrupts.install()
    try:
        results = LocalExecutor(workers=1).map(SwallowsCtrlC(ToySpace(), Digits(), str(toy_table)), archs())
        with pytest.raises(KeyboardInterrupt):
            list(results)
        assert interrupts.REQUESTED.is_set()
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts.REQUESTED.clear()
