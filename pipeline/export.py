"""`python -m pipeline.export SOURCE --out DIR`: write a shrunk space in every exchange format.

SOURCE is a ``shrunk_space.json`` path or ``runs:/<run_id>/shrunk_space.json`` (with
``--tracking-uri``, default ``sqlite:///mlflow.db``). Formats: see ``spaces/exchange.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spaces.exchange import FORMATS, configspace, export
from spaces.shrunk import ShrunkSpace, ShrunkSpaceError


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="shrunk_space.json path or runs:/<run_id>/shrunk_space.json")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--format", dest="formats", action="append", choices=FORMATS,
                        help="format to write (repeatable; default: all)")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store for runs:/ sources")
    args = parser.parse_args(argv)
    try:
        shrunk = ShrunkSpace.load(args.source, tracking_uri=args.tracking_uri)
        paths = export(shrunk, args.out, tuple(args.formats or FORMATS))
    except (ShrunkSpaceError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"shrunk space: {shrunk.size()} archs in {len(shrunk.pockets)} pockets of {shrunk.base.name} "
          f"({shrunk.base.size()} archs)")
    for fmt, path in paths.items():
        print(f"  {fmt:<12} {path}")
    if "configspace" in paths:
        factor = configspace(shrunk)[1]
        print(f"  configspace is LOSSY: its per-decision product holds {factor:.1f}x the shrunk space's archs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
