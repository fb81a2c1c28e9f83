"""Convert NAS-Bench-201 results into the benchmark-table format the ``benchmark`` evaluator reads.

Sources:
- the official NAS-Bench-201 (``NAS-Bench-201-v1_*.pth``) or NATS-Bench topology
  (``NATS-tss-v1_0-3ffb9-simple``) release, read through the ``nats_bench`` package
  (``pip install nats_bench``): 200-epoch results; CIFAR-10 uses the ``cifar10-valid`` protocol
  (trained on train, validation = the held-out half, test = the official test set);
- a CSV export with columns ``arch str``, ``validation accuracy``, ``test accuracy`` (and
  optionally ``train accuracy``), one file per dataset, e.g. ``nasbench201_cifar10.csv``.

Params and FLOPs are computed from this project's NB201 network (C=16, N=5, 32x32 input;
16x16 for ImageNet16-120) so every table carries them, whatever the source.

Usage: ``python -m pipeline.convert_nb201 SOURCE [SOURCE ...] --out benchmarks/nb201.csv``
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.artifacts import write_rows
from spaces.errors import InvalidArchError
from spaces.nb201 import NB201Space
from spaces.nb201.costs import cost_table

DATASETS = {"cifar10": (10, 32), "cifar100": (100, 32), "ImageNet16-120": (120, 16)}
EXPORT_COLUMNS = {"arch str": "arch", "validation accuracy": "val_acc", "test accuracy": "test_acc",
                  "train accuracy": "train_acc"}


class ConversionError(ValueError):
    """A source that cannot be converted; names the file and the fix."""


def dataset_from_name(path: Path) -> str:
    """Infer the dataset from a file name such as ``nasbench201_cifar100.csv``."""
    hits = [d for d in sorted(DATASETS, key=len, reverse=True) if re.search(rf"(^|[_\-.]){re.escape(d)}($|[_\-.])", path.name)]
    if not hits:
        raise ConversionError(f"cannot tell the dataset of {str(path)!r}; pass --dataset {'|'.join(DATASETS)}")
    return hits[0]


def read_export(path: Path, dataset: str) -> Iterator[dict[str, Any]]:
    """Yield table rows from one CSV export file."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in list(EXPORT_COLUMNS)[:3] if c not in (reader.fieldnames or [])]
        if missing:
            raise ConversionError(f"{str(path)!r} lacks column(s) {', '.join(missing)}; expected a NAS-Bench-201 CSV export")
        for row in reader:
            out = {"arch": row["arch str"], "dataset": dataset}
            out.update({new: float(row[old]) for old, new in EXPORT_COLUMNS.items() if old != "arch str" and row.get(old)})
            yield out


def read_release(path: Path, datasets: list[str]) -> Iterator[dict[str, Any]]:
    """Yield table rows from the official release through the ``nats_bench`` API."""
    try:
        from nats_bench import create
    except ImportError:
        raise ConversionError(
            f"reading the official release {str(path)!r} needs the nats_bench package: pip install nats_bench"
        ) from None
    api = create(str(path), "tss", fast_mode=True, verbose=False)
    yield from rows_from_api(api, datasets)


def rows_from_api(api: Any, datasets: list[str]) -> Iterator[dict[str, Any]]:
    """Yield rows from a NATS-Bench topology API object (200-epoch, seed-averaged results)."""
    for index in range(len(api)):
        arch = api.arch(index)
        for dataset in datasets:
            # CIFAR-10 validation only exists under the train/valid split protocol.
            info = api.get_more_info(index, "cifar10-valid" if dataset == "cifar10" else dataset, hp="200", is_random=False)
            yield {"arch": arch, "dataset": dataset, "val_acc": float(info["valid-accuracy"]),
                   "test_acc": float(info["test-accuracy"]), "train_acc": float(info["train-accuracy"])}


def add_costs(rows: list[dict[str, Any]], space: NB201Space) -> None:
    """Fill params and FLOPs of each row from the NB201 network (C=16, N=5)."""
    for row in rows:
        classes, side = DATASETS[row["dataset"]]
        table = cost_table(space.C, space.N, classes, (3, side, side))
        try:
            row["params"], row["flops"] = table.cost(space.from_str(row["arch"]))
        except InvalidArchError as err:
            raise ConversionError(f"dataset {row['dataset']}: {err}") from None


def read_latency(path: Path, space: NB201Space) -> dict[str, dict[str, float]]:
    """Return arch -> {latency_<device>: ms} from a latency CSV (``arch`` + one column per device, in ms)."""
    if not path.is_file():
        raise ConversionError(f"latency file {str(path)!r} not found")
    out: dict[str, dict[str, float]] = {}
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                arch = space.to_str(space.from_str(row.pop("arch")))
                out[arch] = {f"latency_{device}": float(ms) for device, ms in row.items() if ms not in ("", None)}
            except (InvalidArchError, ValueError, TypeError, AttributeError) as err:
                raise ConversionError(f"latency file {str(path)!r} line {line}: {err}") from None
    return out


def convert(sources: list[Path], out: Path, dataset: str | None = None, costs: bool = True,
            latency: Path | None = None) -> int:
    """Convert every source into one table at ``out`` (with latency columns from ``latency``); return the row count."""
    space = NB201Space()
    rows: list[dict[str, Any]] = []
    for source in sources:
        if not source.exists():
            raise ConversionError(f"source {str(source)!r} not found")
        if source.suffix == ".csv":
            rows += read_export(source, dataset or dataset_from_name(source))
        else:
            rows += read_release(source, [dataset] if dataset else list(DATASETS))
    if costs:
        add_costs(rows, space)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = ["arch", "dataset", "val_acc", "test_acc", "params", "flops", "train_acc"]
    if latency is not None:
        measured = read_latency(latency, space)
        for r in rows:
            r.update(measured.get(r["arch"], {}))  # an arch without a measurement keeps empty cells: unknown
        columns += sorted({k for m in measured.values() for k in m})
    write_rows(out, [{k: r.get(k) for k in columns} for r in rows])
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.convert_nb201", description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="official release path or CSV export file(s)")
    parser.add_argument("--out", type=Path, required=True, help="benchmark table to write (CSV)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="dataset of the sources (default: from file names)")
    parser.add_argument("--no-costs", action="store_true", help="skip params/FLOPs")
    parser.add_argument("--latency", type=Path, help="latency CSV (arch + one column per device, ms), e.g. "
                        "nb201_latency_ms.csv: adds latency_<device> columns for constraints.device=")
    args = parser.parse_args(argv)
    try:
        n = convert(args.sources, args.out, args.dataset, costs=not args.no_costs, latency=args.latency)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
