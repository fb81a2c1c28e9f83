"""Where evaluations run: in this process (``local``) or fanned out over Ray (``ray``).

Both keep results in input order, retry a failing evaluation, and return an architecture that
keeps failing as a ``Failure`` (with its error) instead of raising, so one bad architecture never
stops a run. Results do not depend on the executor: every evaluation is seeded by its arch.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import interrupts
from pipeline.evaluators.base import Evaluator
from spaces.base import Arch


@dataclass(frozen=True)
class Failure:
    """An evaluation that failed on every attempt."""

    error: str  # the last error, one line
    attempts: int


def _one_line(err: BaseException) -> str:
    """Return ``Type: message`` on one line."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"[:500]


def evaluate_with_retries(evaluator: Evaluator, arch: Arch, attempts: int) -> dict[str, float] | Failure:
    """Evaluate ``arch`` up to ``attempts`` times; return its metrics or the last failure."""
    error: BaseException | None = None
    for _ in range(attempts):
        try:
            return evaluator.evaluate(arch)
        except Exception as err:  # any evaluator bug or transient fault is retried, then recorded
            error = err
    assert error is not None
    return Failure(_one_line(error), attempts)


class Executor(ABC):
    """Maps an evaluator over architectures."""

    @abstractmethod
    def map(self, evaluator: Evaluator, archs: Sequence[Arch]) -> Iterator[dict[str, float] | Failure]:
        """Yield one result per arch, in input order."""

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release resources (a Ray connection)."""


_POOL_EVALUATOR: Evaluator | None = None


def _init_pool_worker(evaluator: Evaluator, threads: int) -> None:
    """Hold the evaluator in a worker process; Ctrl-C is the parent's to handle."""
    import signal

    import torch

    global _POOL_EVALUATOR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _POOL_EVALUATOR = evaluator


def _pool_evaluate(arch: Arch, attempts: int) -> dict[str, float] | Failure:
    """Evaluate one arch in a worker process."""
    assert _POOL_EVALUATOR is not None
    return evaluate_with_retries(_POOL_EVALUATOR, arch, attempts)


class LocalExecutor(Executor):
    """Evaluate on this machine: in this process, or in ``workers`` processes of ``threads`` threads each.

    ``workers=auto`` uses the usable cores (at most 8) for evaluators that run torch on the CPU
    and this process otherwise (table lookups, CUDA). See ``pipeline/threads.py`` for why a fixed
    thread count per evaluation and processes for the rest. The processes start only once
    evaluations have taken ``spawn_after_s`` seconds here: spawning one costs seconds (it imports
    torch), which a short run never earns back. Neither choice changes a result.
    """

    def __init__(self, retries: int = 1, workers: int | str = "auto", threads: int | str = 1,
                 spawn_after_s: float = 30.0) -> None:
        from pipeline.threads import resolve_count, usable_cpus

        self.attempts = retries + 1
        self.spawn_after_s, self._spent = float(spawn_after_s), 0.0
        self.threads = resolve_count("executor.threads", threads, usable_cpus())
        self.workers_setting = workers
        resolve_count("executor.workers", workers, 1)  # checks the value now, before any evaluation
        self._pool: Any = None
        self._pool_key: int | None = None

    def workers_for(self, evaluator: Evaluator) -> int:
        """Return how many processes evaluate for ``evaluator``."""
        from pipeline.threads import MAX_AUTO_WORKERS, resolve_count, usable_cpus

        auto = min(usable_cpus() // self.threads, MAX_AUTO_WORKERS) if evaluator.parallel else 1
        return max(1, resolve_count("executor.workers", self.workers_setting, auto))

    def map(self, evaluator: Evaluator, archs: Sequence[Arch]) -> Iterator[dict[str, float] | Failure]:
        """Yield each arch's result, in input order, as soon as it and those before it are ready."""
        from pipeline.threads import torch_threads

        workers = self.workers_for(evaluator)
        if workers <= 1 or len(archs) <= 1 or (self._pool is None and self._spent < self.spawn_after_s):
            with torch_threads(self.threads):
                for arch in archs:
                    start = time.perf_counter()
                    result = evaluate_with_retries(evaluator, arch, self.attempts)
                    self._spent += time.perf_counter() - start
                    interrupts.check()
                    yield result
            return
        pending, broke = list(range(len(archs))), set()
        while pending:
            pool = self._pool_for(evaluator, workers)
            futures = [pool.submit(_pool_evaluate, archs[i], self.attempts) for i in pending]
            try:
                for k, (i, future) in enumerate(zip(pending, futures, strict=True)):
                    try:
                        result = future.result()
                    except Exception as err:  # a worker died (killed, out of memory): the pool is broken
                        self.close()
                        # A break fails every arch in flight, so an arch is blamed only when it breaks a pool twice.
                        if i in broke:
                            yield Failure(f"worker process failed: {_one_line(err)}", self.attempts)
                            k += 1
                        broke.add(i)
                        pending = pending[k:]
                        break
                    interrupts.check()
                    yield result
                else:
                    pending = []
            finally:
                for future in futures:
                    future.cancel()

    def _pool_for(self, evaluator: Evaluator, workers: int) -> Any:
        """Return the process pool for ``evaluator`` (kept across rounds: spawning costs seconds)."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None or self._pool_key != id(evaluator):
            self.close()
            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_pool_worker, initargs=(evaluator, self.threads))
            self._pool_key = id(evaluator)
        return self._pool

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool, self._pool_key = None, None


def _ray_batch(evaluator: Evaluator, archs: list[Arch], attempts: int) -> list[dict[str, float] | Failure]:
    """Evaluate one batch on a Ray worker (per-arch failures are caught, not raised)."""
    return [evaluate_with_retries(evaluator, arch, attempts) for arch in archs]


class RayExecutor(Executor):
    """Ship batches of architectures to Ray workers; a crashed task is retried by Ray."""

    def __init__(self, address: str = "local", batch_size: int = 8, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 retries: int = 2) -> None:
        try:
            import ray
        except ImportError:
            from pipeline.errors import ConfigError  # here: pipeline.errors imports this module

            raise ConfigError("executor=ray needs Ray, which is not installed; run: pip install 'nas-shrink[ray]'") from None
        self.ray, self.batch_size, self.retries = ray, batch_size, retries
        if not ray.is_initialized():
            # "local" starts a private instance; "auto" or ray://host:port joins a cluster.
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False, ignore_reinit_error=True)
        self.task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=retries)(_ray_batch)
        self._evaluator_ref: Any = None
        self._evaluator_id: int | None = None

    def map(self, evaluator: Evaluator, archs: Sequence[Arch]) -> Iterator[dict[str, float] | Failure]:
        """Submit every batch at once, then yield results batch by batch, in order."""
        if self._evaluator_id != id(evaluator):
            self._evaluator_ref, self._evaluator_id = self.ray.put(evaluator), id(evaluator)
        batches = [list(archs[i : i + self.batch_size]) for i in range(0, len(archs), self.batch_size)]
        futures = [self.task.remote(self._evaluator_ref, batch, self.retries + 1) for batch in batches]
        for batch, future in zip(batches, futures, strict=True):
            try:
                yield from self.ray.get(future)
            except Exception as err:  # the task itself kept dying (worker crash, OOM): record each arch
                failure = Failure(f"ray task failed: {_one_line(err)}", self.retries + 1)
                yield from (failure for _ in batch)
                traceback.clear_frames(err.__traceback__)

    def close(self) -> None:
        """Disconnect from Ray (stops a private local instance)."""
        if self.ray.is_initialized():
            self.ray.shutdown()
