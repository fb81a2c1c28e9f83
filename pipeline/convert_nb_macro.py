"""Convert NAS-Bench-Macro's JSON release into the benchmark-table format.

NAS-Bench-Macro publishes three CIFAR-10 test accuracies per architecture (three training seeds)
and no validation split. So that search never sees the number it is judged on, the table uses
``val_acc`` = mean of runs 1-2 and ``test_acc`` = run 3; ``mean_acc`` (all three) and ``std``
are passed through for reporting. ``flops`` follows torch's FLOP counter (2 per multiply-add,
i.e. twice the release's multiply-add count); ``params`` is the release's.

Usage: python -m pipeline.convert_nb_macro nas-bench-macro_cifar10.json --out benchmarks/nb_macro.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.artifacts import write_rows
from spaces.errors import InvalidArchError
from spaces.nb_macro import NBMacroSpace


class ConversionError(ValueError):
    """A release file that cannot be converted; names the file and the entry."""


def rows_from_release(data: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """Return one table row per architecture of the release."""
    space, rows = NBMacroSpace(), []
    for key, entry in data.items():
        try:
            space.from_str(key)
            runs = [float(x) for x in entry["test_acc"]]
            if len(runs) != 3:
                raise ValueError(f"expected 3 test accuracies, got {len(runs)}")
            rows.append({"arch": key, "dataset": "cifar10", "val_acc": (runs[0] + runs[1]) / 2, "test_acc": runs[2],
                         "params": int(entry["params"]), "flops": 2 * int(entry["flops"]),
                         "mean_acc": float(entry["mean_acc"]), "std": float(entry["std"])})
        except (InvalidArchError, KeyError, TypeError, ValueError) as err:
            raise ConversionError(f"{source}: entry {key!r}: {err}") from None
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.convert_nb_macro", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="nas-bench-macro_cifar10.json")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.source.read_text())
        rows = rows_from_release(data, str(args.source))
    except FileNotFoundError:
        print(f"error: {args.source} not found", file=sys.stderr)
        return 2
    except (json.JSONDecodeError, ConversionError, AttributeError) as err:
        print(f"error: {args.source}: {err}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_rows(args.out, rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
