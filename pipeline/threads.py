"""CPU policy: one thread per evaluation, parallelism from worker processes sized to the usable cores.

Why one thread: the networks evaluated here are small, so a second intra-op thread bought nothing
on an idle 2-core machine (10 NB201 digits trainings: 7.5 s with 1 thread, 7.8 s with 2), while a
second thread made the run 3.9x slower as soon as another process used one core (29.2 s: each
operator waits for its slowest thread, and the other process keeps one descheduled). And
results must not depend on the machine's load: the thread count changes floating-point
reduction order (1 of 8 validation accuracies differed between 1 and 2 threads), so the count
is a fixed setting, never chosen from the current load. Worker processes change no result
(every evaluation is seeded by its arch), so their number may follow the machine.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import ConfigError

MAX_AUTO_WORKERS = 8  # each worker holds a copy of the dataset and torch (~300 MB)


def usable_cpus() -> int:
    """Return the cores this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(count, math.ceil(quota)) if quota else count)


def _cgroup_quota() -> float | None:
    """Return the cgroup v2 CPU quota in cores (``cpu.max``), or None when unlimited or unknown."""
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if limit == "max" else float(limit) / float(period)


def resolve_count(name: str, setting: int | str, auto: int) -> int:
    """Read a ``threads`` / ``workers`` setting: a positive integer or ``auto``."""
    if setting == "auto":
        return auto
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ConfigError(f"{name}={setting!r} must be a positive integer or auto")
    return setting


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run a block with ``count`` intra-op torch threads, restoring the previous count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
