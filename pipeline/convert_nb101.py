"""Convert the official NAS-Bench-101 release (``nasbench_only108.tfrecord`` or
``nasbench_full.tfrecord``) into the benchmark-table format, without TensorFlow.

Each TFRecord holds one training repeat as JSON ``[hash, epochs, adjacency, ops, metrics]``, the
metrics a base64 ``ModelMetrics`` protobuf (``evaluation_data`` = 1, ``trainable_parameters`` =
2; per evaluation ``validation_accuracy`` = 4, ``test_accuracy`` = 5; the last evaluation is the
end of training). Rows use this project's canonical cell string; accuracies are converted to
percent and written once per repeat (``seed`` = repeat index), so the benchmark evaluator
averages the three repeats as the official API does.

Usage: python -m pipeline.convert_nb101 nasbench_only108.tfrecord --out benchmarks/nb101.csv [--epochs 108]
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.artifacts import write_rows
from spaces.errors import InvalidArchError
from spaces.nb101 import NB101Space


class ConversionError(ValueError):
    """A release file that cannot be converted; names the file and the record."""


def tfrecords(path: Path) -> Iterator[bytes]:
    """Yield the payloads of a TFRecord file (length, length CRC, data, data CRC; CRCs not checked)."""
    with path.open("rb") as handle:
        while header := handle.read(12):
            if len(header) < 12:
                raise ConversionError(f"{path}: truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            data = handle.read(length)
            if len(data) < length or len(handle.read(4)) < 4:
                raise ConversionError(f"{path}: truncated record of {length} bytes")
            yield data


def protobuf_fields(data: bytes) -> dict[int, list[Any]]:
    """Decode one protobuf message into field number -> values (varint, double, bytes)."""
    fields: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            (value,), pos = struct.unpack("<d", data[pos:pos + 8]), pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 5:
            (value,), pos = struct.unpack("<f", data[pos:pos + 4]), pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read one base-128 varint."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def row_from_record(space: NB101Space, payload: bytes) -> tuple[int, dict[str, Any]]:
    """Return (epochs, table row) of one record."""
    module_hash, epochs, raw_adjacency, raw_ops, raw_metrics = json.loads(payload.decode())
    dim = int(round(len(raw_adjacency) ** 0.5))
    matrix = np.array([int(c) for c in raw_adjacency], dtype=np.int8).reshape(dim, dim)
    arch = space.from_spec(matrix, raw_ops.split(","))
    metrics = protobuf_fields(base64.b64decode(raw_metrics))
    final = protobuf_fields(metrics[1][-1])
    return int(epochs), {"arch": space.to_str(arch), "dataset": "cifar10",
                         "val_acc": 100.0 * final[4][0], "test_acc": 100.0 * final[5][0],
                         "params": int(metrics[2][0]), "hash": module_hash}


def convert(source: Path, out: Path, epochs: int = 108) -> int:
    """Convert ``source`` into ``out`` (one row per repeat at ``epochs``); return the row count."""
    space, rows, repeats = NB101Space(), [], {}
    for index, payload in enumerate(tfrecords(source)):
        try:
            record_epochs, row = row_from_record(space, payload)
        except (InvalidArchError, KeyError, IndexError, TypeError, ValueError) as err:
            raise ConversionError(f"{source}: record {index}: {err}") from None
        if record_epochs == epochs:
            row["seed"] = repeats[row["arch"]] = repeats.get(row["arch"], -1) + 1
            rows.append(row)
    if not rows:
        raise ConversionError(f"{source}: no record trained for {epochs} epochs (try --epochs 4, 12, 36 or 108)")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_rows(out, rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.convert_nb101", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="nasbench_only108.tfrecord or nasbench_full.tfrecord")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=108, help="training budget to keep (4, 12, 36, 108)")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"error: {args.source} not found (download it from github.com/google-research/nasbench)", file=sys.stderr)
        return 2
    try:
        count = convert(args.source, args.out, args.epochs)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {count} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
