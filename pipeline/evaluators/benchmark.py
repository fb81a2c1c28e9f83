"""The ``benchmark`` evaluator: per-arch metrics looked up in a tabular benchmark file.

Table format (CSV, one row per architecture and dataset, header required):

=========  ==================================================================
column     meaning
=========  ==================================================================
arch       the space's architecture string (NB201: official ``|op~0|+...`` form)
dataset    dataset name as in ``conf/dataset/*.yaml`` (cifar10, cifar100, ImageNet16-120)
val_acc    validation accuracy in %, the search signal
test_acc   test accuracy in %, reported only, never searched on
params     parameter count (optional)
flops      FLOPs of one forward pass at batch 1, torch.utils.flop_counter convention (optional)
latency_D  latency in ms on device D, e.g. latency_pixel3 (optional; ``constraints.device=D``)
seed       training seed (optional); rows of one arch with several seeds are averaged
...        any further numeric column (train_acc, val_acc_e4, ...) is passed through
=========  ==================================================================

Tables built by ``python -m pipeline.bench`` add ``equivalence`` (the arch's equivalence key)
and ``trained_as`` (the arch actually trained for its equivalence class), both text.

``python -m pipeline.convert_nb201`` writes this format from the official NAS-Bench-201 /
NATS-Bench topology release or from its CSV export.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

from pipeline.artifacts import TEXT_COLUMNS
from pipeline.datasets import Dataset
from pipeline.evaluators.base import Evaluator, EvaluatorError
from spaces.base import Arch, SearchSpace
from spaces.errors import InvalidArchError

REQUIRED = ("arch", "dataset", "val_acc", "test_acc")

def fix_for(path: Path, space: SearchSpace, dataset: str) -> str:
    """Return how the table at ``path`` is made: the converter of its benchmark, or pipeline.bench for one built here."""
    if space.name == "nb_macro":
        return "convert the official release with `python -m pipeline.convert_nb_macro SOURCE --out PATH`"
    if space.name == "nb201" and path.stem in ("nb201", "nasbench201"):
        return "convert the official release with `python -m pipeline.convert_nb201 SOURCE --out PATH`"
    return (f"build it with `python -m pipeline.bench space={space.name} dataset={dataset} out={path}`"
            + (" (or convert NB201's release with `python -m pipeline.convert_nb201 SOURCE --out PATH`)"
               if space.name == "nb201" else ""))


def read_table(path: Path, space: SearchSpace, dataset: str) -> dict[str, dict[str, float]]:
    """Read the rows of ``dataset`` from a benchmark table, keyed by arch string."""
    if not path.is_file():
        raise EvaluatorError(f"benchmark table {str(path)!r} not found; {fix_for(path, space, dataset)} or set evaluator.path=")
    try:
        return _read(path, space, dataset)
    except (csv.Error, UnicodeDecodeError) as err:
        raise EvaluatorError(f"benchmark table {str(path)!r} is not a readable CSV ({err}); "
                             f"{fix_for(path, space, dataset)}") from None


def _read(path: Path, space: SearchSpace, dataset: str) -> dict[str, dict[str, float]]:
    """Parse the table (see ``read_table``)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise EvaluatorError(
                f"benchmark table {str(path)!r} lacks column(s) {', '.join(missing)} "
                f"(has {reader.fieldnames}); {fix_for(path, space, dataset)}"
            )
        groups: dict[str, list[dict[str, float]]] = {}
        datasets = set()
        for line, row in enumerate(reader, start=2):
            if None in row or None in row.values():
                raise EvaluatorError(f"benchmark table {str(path)!r} line {line} has {'more' if None in row else 'fewer'} "
                                     f"cells than the header (a truncated or corrupted file?); {fix_for(path, space, dataset)}")
            datasets.add(row["dataset"])
            if row["dataset"] == dataset:
                key, metrics = _parse_row(path, line, row, space)
                groups.setdefault(key, []).append((line, metrics))
    rows = {key: _mean_over_seeds(path, key, _distinct(found)) for key, found in groups.items()}
    if not rows:
        raise EvaluatorError(
            f"benchmark table {str(path)!r} has no rows for dataset {dataset!r} "
            f"(it has {', '.join(sorted(datasets)) or 'none'}); pick one with dataset=NAME"
        )
    return rows


def _distinct(rows: list[tuple[int, dict[str, float]]]) -> list[tuple[int, dict[str, float]]]:
    """Drop exact repeats of a row (the same arch written twice, e.g. two labellings of one cell)."""
    seen: dict[str, tuple[int, dict[str, float]]] = {}
    for line, metrics in rows:
        seen.setdefault(repr(sorted(metrics.items())), (line, metrics))
    return list(seen.values())


def _mean_over_seeds(path: Path, arch: str, rows: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """Average one arch's rows, one per training seed (as NB201 reports them); conflicting rows are an error."""
    if len(rows) == 1:
        return rows[0][1]
    seeds = [r.get("seed") for _, r in rows]
    if None in seeds or len(set(seeds)) < len(seeds):
        # Two different results for one arch and no seed column telling them apart: averaging would hide a
        # mislabelled or corrupted table, so the user decides which row is right.
        lines = [line for line, r in rows if seeds.count(r.get("seed")) > 1 or r.get("seed") is None]
        columns = sorted(set().union(*(r for _, r in rows)))
        differ = next((k for k in columns if len({repr(r.get(k)) for _, r in rows}) > 1), "values")
        raise EvaluatorError(f"benchmark table {str(path)!r} lines {', '.join(map(str, lines[:4]))} give arch {arch!r} "
                             f"different {differ}; keep one row per arch, or add a seed column that tells the "
                             "training runs apart")
    metrics = [r for _, r in rows]
    keys = [k for k in metrics[0] if k != "seed" and all(k in r for r in metrics)]
    return {**{k: sum(r[k] for r in metrics) / len(metrics) for k in keys}, "seeds": float(len(metrics))}


def _parse_row(path: Path, line: int, row: dict[str, str], space: SearchSpace) -> tuple[str, dict[str, float]]:
    """Return (canonical arch string, numeric metrics) of one table row."""
    try:
        key = space.to_str(space.canonical(space.from_str(row["arch"])))
    except InvalidArchError as err:
        raise EvaluatorError(f"benchmark table {str(path)!r} line {line}: {err}") from None
    metrics = {}
    for column, value in row.items():
        if column in TEXT_COLUMNS or value in ("", None):
            continue
        try:
            metrics[column] = float(value)
        except ValueError:
            raise EvaluatorError(
                f"benchmark table {str(path)!r} line {line}: {column}={value!r} is not a number"
            ) from None
    for column in ("val_acc", "test_acc"):
        if column not in metrics:
            raise EvaluatorError(f"benchmark table {str(path)!r} line {line}: {column} is empty")
    return key, metrics


class BenchmarkEvaluator(Evaluator):
    """Look architectures up in a benchmark table; search on ``metric`` (validation accuracy)."""

    name = "benchmark"
    reads_table = True

    def __init__(self, space: SearchSpace, dataset: Dataset, path: str, metric: str = "val_acc") -> None:
        super().__init__(space)
        self.path, self.dataset, self.metric = Path(path).expanduser(), dataset, metric
        self.table = read_table(self.path, space, dataset.name)
        if metric == "test_acc":
            raise EvaluatorError("evaluator.metric=test_acc would search on the test set; use val_acc")
        first = next(iter(self.table.values()))
        if metric not in first:
            raise EvaluatorError(
                f"evaluator.metric={metric!r} is not a column of {str(self.path)!r} "
                f"(columns: {', '.join(first)})"
            )
        unusable = sum(not math.isfinite(row[metric]) for row in self.table.values())
        if unusable == len(self.table):
            raise EvaluatorError(f"benchmark table {str(self.path)!r} has no finite {metric} for dataset "
                                 f"{dataset.name!r} (every row is NaN or inf); rebuild or reconvert the table")
        if unusable:
            warnings.warn(f"{unusable:,} of {len(self.table):,} archs in {str(self.path)!r} have a NaN or infinite "
                          f"{metric}; evaluating one records it as the worst score", RuntimeWarning, stacklevel=2)

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """Return the table's metrics for ``arch``."""
        key = self.space.to_str(arch)
        if key not in self.table:
            raise EvaluatorError(
                f"arch {key!r} is not in benchmark table {str(self.path)!r} "
                f"for dataset {self.dataset.name!r}; the table must cover the whole space"
            )
        return dict(self.table[key])

    def costs(self, arch: Arch) -> dict[str, float]:
        """Return the table's params and FLOPs of ``arch``."""
        row = self.evaluate(arch)
        # An empty cell is an unknown cost: NaN, which no budget admits (see Constraints.violation).
        keys = ["params", "flops", *(c for c in self.columns if c.startswith("latency_"))]
        return {k: row.get(k, math.nan) for k in keys}

    def devices(self) -> list[str]:
        """Return the devices the table measured latency on (its ``latency_<device>`` columns)."""
        return sorted(c.removeprefix("latency_") for c in self.columns if c.startswith("latency_"))

    @property
    def columns(self) -> set[str]:
        """Return every metric column the table has for this dataset."""
        if not hasattr(self, "_columns"):
            self._columns = set().union(*self.table.values())
        return self._columns

    def unknown_costs(self, keys: tuple[str, ...]) -> int:
        """Return how many archs lack a finite value in any of the cost columns ``keys``."""
        return sum(any(not math.isfinite(row.get(k, math.nan)) for k in keys) for row in self.table.values())

    def tags(self) -> dict[str, str]:
        """Return evaluator, dataset and table path."""
        return {**super().tags(), "dataset": self.dataset.name, "benchmark_table": str(self.path)}
