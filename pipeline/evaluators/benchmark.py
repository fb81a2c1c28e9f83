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
from pathlib import Path

from pipeline.artifacts import TEXT_COLUMNS
from pipeline.datasets import Dataset
from pipeline.evaluators.base import Evaluator, EvaluatorError
from spaces.base import Arch, SearchSpace
from spaces.errors import InvalidArchError

REQUIRED = ("arch", "dataset", "val_acc", "test_acc")

FIX = "convert the official release with `python -m pipeline.convert_nb201 SOURCE --out PATH`"


def read_table(path: Path, space: SearchSpace, dataset: str) -> dict[str, dict[str, float]]:
    """Read the rows of ``dataset`` from a benchmark table, keyed by arch string."""
    if not path.is_file():
        raise EvaluatorError(f"benchmark table {str(path)!r} not found; {FIX} or set evaluator.path=")
    try:
        return _read(path, space, dataset)
    except (csv.Error, UnicodeDecodeError) as err:
        raise EvaluatorError(f"benchmark table {str(path)!r} is not a readable CSV ({err}); {FIX}") from None


def _read(path: Path, space: SearchSpace, dataset: str) -> dict[str, dict[str, float]]:
    """Parse the table (see ``read_table``)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise EvaluatorError(
                f"benchmark table {str(path)!r} lacks column(s) {', '.join(missing)} "
                f"(has {reader.fieldnames}); {FIX}"
            )
        groups: dict[str, list[dict[str, float]]] = {}
        datasets = set()
        for line, row in enumerate(reader, start=2):
            if None in row or None in row.values():
                raise EvaluatorError(f"benchmark table {str(path)!r} line {line} has {'more' if None in row else 'fewer'} "
                                     f"cells than the header (a truncated or corrupted file?); {FIX}")
            datasets.add(row["dataset"])
            if row["dataset"] == dataset:
                key, metrics = _parse_row(path, line, row, space)
                groups.setdefault(key, []).append(metrics)
    rows = {key: _mean_over_seeds(found) for key, found in groups.items()}
    if not rows:
        raise EvaluatorError(
            f"benchmark table {str(path)!r} has no rows for dataset {dataset!r} "
            f"(it has {', '.join(sorted(datasets)) or 'none'}); pick one with dataset=NAME"
        )
    return rows


def _mean_over_seeds(rows: list[dict[str, float]]) -> dict[str, float]:
    """Average the metrics of one arch's rows (one per training seed), as NB201 reports them."""
    if len(rows) == 1:
        return rows[0]
    keys = [k for k in rows[0] if k != "seed" and all(k in r for r in rows)]
    return {**{k: sum(r[k] for r in rows) / len(rows) for k in keys}, "seeds": float(len(rows))}


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
        missing = [k for k in ("params", "flops") if k not in row]
        if missing:
            raise EvaluatorError(f"benchmark table {str(self.path)!r} has no {missing[0]} column; budgets need it")
        return {"params": row["params"], "flops": row["flops"]}

    def tags(self) -> dict[str, str]:
        """Return evaluator, dataset and table path."""
        return {**super().tags(), "dataset": self.dataset.name, "benchmark_table": str(self.path)}
