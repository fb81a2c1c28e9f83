"""`python -m pipeline.export SOURCE --out DIR`: write a shrunk space in every exchange format.

SOURCE is a ``shrunk_space.json`` path or ``runs:/<run_id>/shrunk_space.json`` (with
``--tracking-uri``, default ``sqlite:///mlflow.db``). Formats: see ``spaces/exchange.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from spaces.exchange import FORMATS, configspace, export
from spaces.shrunk import ShrunkSpace, ShrunkSpaceError

# Formats that need a library the core install does not bring: module -> the pip command.
NEEDS = {"configspace": ("ConfigSpace", "pip install 'nas-shrink[export]'")}


def missing_libraries(formats: tuple[str, ...]) -> dict[str, str]:
    """Return format -> install hint for each requested format whose library is absent."""
    return {fmt: f"needs {NEEDS[fmt][0]}: {NEEDS[fmt][1]}" for fmt in formats
            if fmt in NEEDS and importlib.util.find_spec(NEEDS[fmt][0]) is None}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="shrunk_space.json path or runs:/<run_id>/shrunk_space.json")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--format", dest="formats", action="append", choices=FORMATS,
                        help="format to write (repeatable; default: all)")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for runs:/ sources")
    args = parser.parse_args(argv)
    missing = missing_libraries(tuple(args.formats or FORMATS))
    if args.formats and missing:  # asked for by name: refuse rather than write less than asked
        fmt, hint = next(iter(missing.items()))
        print(f"error: format {fmt!r} {hint}", file=sys.stderr)
        return 2
    try:
        shrunk = ShrunkSpace.load(args.source, tracking_uri=args.tracking_uri)
        paths = export(shrunk, args.out, tuple(f for f in args.formats or FORMATS if f not in missing))
    except (ShrunkSpaceError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"shrunk space: {shrunk.size()} archs in {len(shrunk.pockets)} pockets of {shrunk.base.name} "
          f"({shrunk.base.size()} archs)")
    for fmt, path in paths.items():
        print(f"  {fmt:<12} {path}")
    for fmt, hint in missing.items():
        print(f"  {fmt:<12} skipped: {hint}")
    if "configspace" in paths:
        factor = configspace(shrunk)[1]
        print(f"  configspace is LOSSY: its per-decision product holds {factor:.1f}x the shrunk space's archs "
              "(configspace.meta.json says so beside it; archs.txt lists the members)" if factor > 1 else
              "  configspace is exact: forbidden clauses exclude every non-member of its per-decision product")
    return 0


if __name__ == "__main__":
    sys.exit(main())
