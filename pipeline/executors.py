"""Where evaluations run: in this process (``local``) or fanned out over Ray (``ray``).

Both keep results in input order, retry a failing evaluation, and return an architecture that
keeps failing as a ``Failure`` (with its error) instead of raising, so one bad architecture never
stops a run. Results do not depend on the executor: every evaluation is seeded by its arch.
"""

from __future__ import annotations

import traceback
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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


class LocalExecutor(Executor):
    """Evaluate in this process, one arch at a time."""

    def __init__(self, retries: int = 1) -> None:
        self.attempts = retries + 1

    def map(self, evaluator: Evaluator, archs: Sequence[Arch]) -> Iterator[dict[str, float] | Failure]:
        """Yield each arch's result as soon as it is ready."""
        for arch in archs:
            yield evaluate_with_retries(evaluator, arch, self.attempts)


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
            raise RuntimeError("executor=ray needs Ray: pip install 'nas-shrink[ray]'") from None
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
