"""A benchmark table as the ``train`` evaluator's memory: trainings found there are read, new ones appended.

The table is one built by ``python -m pipeline.bench`` (its columns and its protocol file
``<table>.protocol.json``: space, dataset and training settings). An arch is found by its
equivalence class and training seed, as the bench trains one representative per class; its
params and FLOPs are always its own. A new training is appended under the table's lock, after
re-reading what other processes appended meanwhile, so two workers never write one class twice.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pipeline.artifacts import parse_number, read_json
from pipeline.evaluators.base import EvaluatorError
from pipeline.locks import exclusive
from spaces.base import SearchSpace
from spaces.files import atomic_write, write_json_atomic

KEY = ("equivalence", "seed")  # how a training is found: its class and its seed


def protocol_path(table: Path) -> Path:
    """Return the protocol file that travels with ``table``."""
    return table.with_name(table.name + ".protocol.json")


def columns(record_epochs: tuple[int, ...]) -> list[str]:
    """Return the table header for a protocol."""
    per_epoch = [f"{m}_e{e}" for e in record_epochs for m in ("val_acc", "test_acc")]
    return ["arch", "dataset", "seed", "val_acc", "test_acc", *per_epoch, "params", "flops",
            "train_loss", "train_seconds", "equivalence", "trained_as"]


def check_protocol(table: Path, protocol: dict[str, Any]) -> None:
    """Write the protocol beside a new table; refuse a table made under another one, naming what differs."""
    path = protocol_path(table)
    if not path.exists():
        write_json_atomic(path, protocol)
        return
    recorded = read_json(path)
    differ = [f"{group}.{k}: table {recorded.get(group, {}).get(k)!r}, now {v!r}"
              for group, settings in protocol.items() for k, v in settings.items()
              if recorded.get(group, {}).get(k) != v]
    if differ:
        raise EvaluatorError(f"{table} was trained under another protocol ({'; '.join(differ[:4])}); use the "
                             "table's settings, or another table path")


def drop_torn_tail(out: Path) -> int:
    """Cut a row that a kill left unfinished (the table's last byte is not a line end); return bytes cut.

    A row is complete exactly when its line terminator was written, so the check is structural:
    a torn row whose last cell happens to parse (``trained_as`` = ``'|no'``) is still cut. The
    fix is a copy renamed over the table, so a kill during the repair leaves the old file.
    """
    out.with_name(out.name + ".tmp").unlink(missing_ok=True)  # a repair a kill interrupted: the table itself is whole
    if not out.exists():
        return 0
    data = out.read_bytes()
    end = data.rfind(b"\n") + 1
    if end == len(data):
        return 0
    atomic_write(out, lambda tmp: tmp.write_bytes(data[:end]))
    return len(data) - end


class TableCache:
    """Trainings of one protocol, read from and appended to a benchmark table."""

    def __init__(self, path: Path, space: SearchSpace, dataset: str, record_epochs: tuple[int, ...],
                 protocol: dict[str, Any]) -> None:
        self.path, self.space, self.dataset = Path(path), space, dataset
        self.header = columns(record_epochs)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_protocol(self.path, protocol)
        self.found: dict[tuple[str, int], dict[str, Any]] = {}
        self.read_bytes = 0

    def get(self, arch: str, seed: int) -> dict[str, float] | None:
        """Return the recorded metrics of ``arch``'s class under ``seed`` (its own costs), or None."""
        row = self.found.get((self._key(arch), seed))
        if row is None and self._refresh():
            row = self.found.get((self._key(arch), seed))
        return None if row is None else self._metrics(arch, row)

    def put(self, arch: str, seed: int, metrics: dict[str, float]) -> dict[str, float]:
        """Append ``arch``'s training unless another process recorded its class meanwhile; return what the table holds."""
        with exclusive(self.path.with_name(self.path.name + ".lock"), f"benchmark table {self.path}", wait=True):
            drop_torn_tail(self.path)  # a row a killed writer left half-written would swallow ours
            self._refresh()
            key = (self._key(arch), seed)
            if key not in self.found:
                row = {k: metrics.get(k) for k in self.header}
                row.update(arch=arch, dataset=self.dataset, seed=seed, equivalence=key[0], trained_as=arch)
                self._append(row)
                self.found[key] = {k: str(v) for k, v in row.items()}
        return self._metrics(arch, self.found[key])

    def _key(self, arch: str) -> str:
        """Return the equivalence class of an arch string."""
        return self.space.equivalence_key(self.space.from_str(arch))

    def _metrics(self, arch: str, row: dict[str, Any]) -> dict[str, float]:
        """Return a row's numbers, with ``arch``'s own params and FLOPs when another member was trained."""
        skip = ("arch", "dataset", "seed", "equivalence", "trained_as")
        out = {k: parse_number(v) for k, v in row.items() if k not in skip and v not in (None, "")}
        if row.get("trained_as") != arch:
            out.pop("params", None), out.pop("flops", None)
        return out

    def _refresh(self) -> bool:
        """Re-read the table when it grew (whole lines only); return whether a new training arrived."""
        if not self.path.exists() or self.path.stat().st_size == self.read_bytes:
            return False
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end <= self.read_bytes:
            return False
        text = data[:end].decode()
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames and reader.fieldnames != self.header:
            raise EvaluatorError(f"{self.path} has columns {reader.fieldnames}, not this protocol's; use another "
                                 "table path")
        before = len(self.found)
        for row in reader:
            if row.get("dataset") == self.dataset and row.get("val_acc") not in (None, "") and row.get("equivalence"):
                self.found.setdefault((row["equivalence"], int(float(row["seed"]))), row)
        self.read_bytes = end
        return len(self.found) > before

    def _append(self, row: dict[str, Any]) -> None:
        """Append one row (after the header when the table is new) and flush it to disk."""
        import os

        fresh = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.header)
            if fresh:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
