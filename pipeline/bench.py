"""`python -m pipeline.bench`: build a tabular benchmark by training every arch of a space.

Protocol: the ``train`` evaluator's (optimiser, schedule, epochs, batch size, split of the
``dataset``), once per seed in ``seeds``; validation and test accuracy are also recorded after
each epoch in ``evaluator.record_epochs`` of that same run. Archs with the same
``space.equivalence_key`` compute the same function, so one representative per class is
trained and its results are written for every member (``trained_as`` names it); params and
FLOPs are always each member's own.

Rows are appended and flushed as they finish; a restart on the same ``out`` skips finished
(arch, seed) rows and fills classes whose representative already finished without retraining.
Output: the benchmark-table format of ``pipeline/evaluators/benchmark.py``.
"""

from __future__ import annotations

import csv
import itertools
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from pipeline import CONF_DIR
from pipeline.artifacts import parse_number
from pipeline.build import build
from pipeline.cli import check
from pipeline.errors import DOMAIN_ERRORS, ConfigError
from pipeline.evaluators.table_cache import check_protocol, columns, drop_torn_tail
from pipeline.evaluators.train import TrainEvaluator
from pipeline.locks import exclusive
from pipeline.record import git_sha, plain_params
from pipeline.schema import register
from pipeline.tracking import Tracker
from spaces.base import CategoricalSpace, SearchSpace

MAX_ENUMERATED = 1_000_000  # above this, building every arch is refused: set n


@dataclass(frozen=True)
class BenchResult:
    """What a build did."""

    out: Path
    rows: int  # rows in the table now
    trained: int  # training runs done by this invocation
    reused: int  # (arch, seed) rows already present before this invocation
    archs_per_hour: float  # archs covered (trained or mapped) per hour of this invocation's wall time


def arch_list(space: SearchSpace, n: int | None, seed: int) -> list[str]:
    """Return every arch string of the space, or a uniform sample of ``n``."""
    if n is not None:
        return [space.to_str(a) for a in space.sample_unique(n, np.random.default_rng(seed))]
    if space.size() > MAX_ENUMERATED or not isinstance(space, CategoricalSpace):
        raise ConfigError(f"{space.name} has {space.size():,} archs; set n=<sample size> to build a sampled table")
    return [space.to_str(a) for a in itertools.product(*space.options)]


def read_done(out: Path, header: list[str]) -> list[dict[str, str]]:
    """Return the complete rows already in ``out`` (never rewriting it)."""
    if not out.exists() or out.stat().st_size == 0:
        return []
    try:
        with out.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != header:
                raise ConfigError(f"{out} was built with another protocol (columns {reader.fieldnames}); "
                                  "use a new out= path or the same settings")
            required = ("arch", "seed", "val_acc", "trained_as")
            return [r for r in reader if None not in r and all(r.get(k) not in (None, "") for k in required)]
    except (csv.Error, UnicodeDecodeError) as err:
        raise ConfigError(f"{out} is not a readable benchmark table ({err}); move it aside and build again, "
                          "or use a new out= path") from None


def _write(out: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    """Append rows (after a header when the table is new or empty) and flush them to disk."""
    fresh = not out.exists() or out.stat().st_size == 0
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        if fresh:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())


_WORKER: TrainEvaluator | None = None


def _init_worker(evaluator: TrainEvaluator, threads: int) -> None:
    """Hold one evaluator per worker process (sent once, not per task)."""
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = evaluator


def _train(arch: str, seed: int) -> tuple[str, int, dict[str, float]]:
    """Train one representative with one seed in a worker."""
    assert _WORKER is not None
    _WORKER.seed = seed
    return arch, seed, _WORKER.train(_WORKER.space.from_str(arch))


class Builder:
    """Plans, trains and writes one benchmark table."""

    def __init__(self, space: SearchSpace, evaluator: TrainEvaluator, dataset: str, seeds: list[int], out: Path) -> None:
        self.space, self.evaluator, self.dataset, self.seeds, self.out = space, evaluator, dataset, seeds, out
        self.header = columns(evaluator.record_epochs)
        splits = evaluator.dataset.splits
        self.shape, self.classes = splits.input_shape, splits.num_classes

    def classes_of(self, archs: list[str]) -> dict[str, list[str]]:
        """Group archs by equivalence key; the first member of each class is its representative."""
        groups: dict[str, list[str]] = {}
        for arch in archs:
            groups.setdefault(self.space.equivalence_key(self.space.from_str(arch)), []).append(arch)
        return groups

    def member_row(self, arch: str, key: str, rep: str, seed: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """Return the table row of one member from its representative's metrics."""
        row = {k: metrics.get(k) for k in self.header}
        if arch != rep:
            params, flops = self.space.costs(self.space.from_str(arch), self.shape, self.classes)
            row.update(params=params, flops=flops)
        row.update(arch=arch, dataset=self.dataset, seed=seed, equivalence=key, trained_as=rep)
        return row

    def run(self, archs: list[str], workers: int, threads: int, progress: bool, limit: int | None = None) -> BenchResult:
        """Train what is missing, write every member's rows, return the counts."""
        start = time.perf_counter()
        drop_torn_tail(self.out)
        done_rows = read_done(self.out, self.header)
        done = {(r["arch"], int(float(r["seed"]))) for r in done_rows}
        trained_before = {(r["arch"], int(float(r["seed"]))): r for r in done_rows if r["arch"] == r["trained_as"]}
        groups = self.classes_of(archs)
        todo = [(key, members, seed) for key, members in groups.items() for seed in self.seeds
                if any((m, seed) not in done for m in members)]
        # Classes whose representative already finished are filled without retraining.
        for key, members, seed in [t for t in todo if (t[1][0], t[2]) in trained_before]:
            metrics = {k: parse_number(v) for k, v in trained_before[(members[0], seed)].items()}
            self._emit(key, members, seed, metrics, done)
        tasks = [(key, members, seed) for key, members, seed in todo if (members[0], seed) not in trained_before]
        trained = self._train_all(tasks[:limit] if limit is not None else tasks, done, workers, threads, progress)
        covered = sum(len(m) for _, m, _ in todo)
        hours = (time.perf_counter() - start) / 3600
        return BenchResult(self.out, len(read_done(self.out, self.header)), trained, len(done_rows),
                           covered / hours if hours > 0 else float("nan"))

    def _emit(self, key: str, members: list[str], seed: int, metrics: dict[str, Any], done: set[tuple[str, int]]) -> None:
        """Write the rows of every member not yet in the table."""
        rows = [self.member_row(m, key, members[0], seed, metrics) for m in members if (m, seed) not in done]
        _write(self.out, self.header, rows)
        done.update((m, seed) for m in members)

    def _train_all(self, tasks: list[tuple[str, list[str], int]], done: set[tuple[str, int]], workers: int,
                   threads: int, progress: bool) -> int:
        """Train each task's representative (in parallel when workers > 1) and write its class."""
        by_rep = {(members[0], seed): (key, members) for key, members, seed in tasks}
        bar = tqdm(total=len(tasks), desc="bench", unit="arch", disable=not progress)
        for arch, seed, metrics in self._results(tasks, workers, threads):
            key, members = by_rep[(arch, seed)]
            self._emit(key, members, seed, metrics, done)
            bar.update()
        bar.close()
        return len(tasks)

    def _results(self, tasks: list[tuple[str, list[str], int]], workers: int, threads: int) -> Iterator[tuple[str, int, dict]]:
        """Yield (representative, seed, metrics) as trainings finish."""
        if workers <= 1:
            _init_worker(self.evaluator, threads)
            yield from (_train(members[0], seed) for _, members, seed in tasks)
            return
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(self.evaluator, threads)) as pool:
            futures = [pool.submit(_train, members[0], seed) for _, members, seed in tasks]
            for future in as_completed(futures):
                yield future.result()


def build_benchmark(cfg: DictConfig, limit: int | None = None) -> BenchResult:
    """Build (or resume) the table described by ``cfg`` and log the build to MLflow."""
    space, evaluator, _ = build(cfg)
    if not evaluator.trains_on_images:
        raise ConfigError("pipeline.bench trains architectures: use evaluator=train")
    import torch

    threads = int(cfg.torch_threads or (torch.get_num_threads() if cfg.workers <= 1 else 1))
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_protocol(out, evaluator.protocol())  # a table holds one protocol: its file travels with it
    builder = Builder(space, evaluator, evaluator.dataset.name, [int(s) for s in cfg.seeds], out)
    archs = arch_list(space, cfg.n, int(cfg.seed))
    tracker = Tracker(cfg.tracking.uri, cfg.tracking.experiment)
    tags = {"space": space.name, "dataset": evaluator.dataset.name, "git_sha": git_sha(), "out": str(out.resolve())}
    with tracker.run(f"bench-{space.name}-{evaluator.dataset.name}", None, tags) as run_id:
        tracker.params(run_id, plain_params(cfg))
        with exclusive(out.with_name(out.name + ".lock"), f"benchmark table {out}"):
            result = builder.run(archs, int(cfg.workers), threads, bool(cfg.progress), limit)
        tracker.metrics(run_id, {"archs_requested": len(archs), "rows": result.rows, "trained": result.trained,
                                 "reused_rows": result.reused, "archs_per_hour": result.archs_per_hour,
                                 "equivalence_classes": len(builder.classes_of(archs))})
        tracker.artifact(run_id, out)
    return result


register()  # the typed schemas the config groups name (pipeline/schema.py), before Hydra composes


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
def main(cfg: DictConfig) -> None:
    """Build the table and say where it is."""
    try:
        result = build_benchmark(cfg)
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    print(f"table: {result.out} ({result.rows} rows; trained {result.trained} now, {result.reused} rows were "
          f"already there; {result.archs_per_hour:.0f} archs/hour)")
    from hydra.core.hydra_config import HydraConfig

    dataset = HydraConfig.get().runtime.choices.dataset
    print(f"read it with: python -m pipeline evaluator=benchmark evaluator.path={result.out} dataset={dataset}")


def cli() -> None:
    """Console-script entry point (``nas-shrink-bench``): check the command line, then build."""
    try:
        check(sys.argv[1:], "bench")
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: finished rows are kept in the table; rerun the same command to continue")


if __name__ == "__main__":
    cli()
