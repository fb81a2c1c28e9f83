"""One table: artifact name -> file name + reader/writer. Stages exchange only these files."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import RunFolderError
from spaces.files import atomic_write, write_json_atomic

Rows = list[dict[str, Any]]


def write_json(path: Path, obj: Any) -> None:
    """Write strict JSON (NaN as null) atomically so an interrupted write never leaves a half file."""
    write_json_atomic(path, obj)


def read_json(path: Path) -> Any:
    """Read a JSON file; a cut or damaged one is a RunFolderError naming it (this project writes them atomically)."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        fix = ("restore it, or start a new run: it records the run's settings" if path.name == "run.json" else
               "restore it, or move it aside to recompute what it records")
        raise RunFolderError(f"{path} is cut or not JSON ({err}); it was damaged after it was written (a copy, a "
                             f"full disk, an editor): {fix}") from None


def write_rows(path: Path, rows: Rows) -> None:
    """Write dict rows as CSV (header = union of keys, first-seen order), atomically."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields or ["arch"])
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


# Identities stay strings even when they look numeric (NAS-Bench-Macro archs read "02012100").
TEXT_COLUMNS = frozenset({"arch", "origin", "note", "dataset", "equivalence", "trained_as", "hash"})


def read_rows(path: Path) -> Rows:
    """Read CSV rows, turning numeric cells (outside the identity columns) into floats."""
    with path.open(newline="") as handle:
        return [{k: v if k in TEXT_COLUMNS else parse_number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def parse_number(text: str | None) -> Any:
    """Return ``text`` as a float when it is one, else unchanged (empty -> None)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _torch_load(path: Path) -> Any:
    """Read a torch checkpoint onto the CPU."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _torch_save(path: Path, obj: Any) -> None:
    """Write a torch checkpoint atomically."""
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


@dataclass(frozen=True)
class Artifact:
    """Where an artifact lives inside a stage folder and how to read and write it."""

    filename: str
    read: Callable[[Path], Any]
    write: Callable[[Path, Any], None]


ARTIFACTS: dict[str, Artifact] = {
    "proposals": Artifact("proposals.csv", read_rows, write_rows),  # archs to evaluate + origin
    "scores": Artifact("scores.csv", read_rows, write_rows),  # archs evaluated by one stage
    "graph": Artifact("graph.json", read_json, write_json),  # nodes (arch strings) + edges
    "pockets": Artifact("pockets.json", read_json, write_json),  # pockets of one round
    "restriction": Artifact("restriction.json", read_json, write_json),  # allowed options per decision
    "shrunk_space": Artifact("shrunk_space.json", read_json, write_json),  # the emitted space
    "curves": Artifact("curves.csv", read_rows, write_rows),  # supernet: one row per training epoch
    "checkpoint": Artifact("checkpoint.pt", _torch_load, _torch_save),  # supernet weights + optimiser state
    "ranking": Artifact("ranking.csv", read_rows, write_rows),  # supernet estimate vs reference per arch
    "search": Artifact("search.json", read_json, write_json),  # evolutionary search result
    "subnet": Artifact("best_subnet.pt", _torch_load, _torch_save),  # best arch's network, inherited weights
}
