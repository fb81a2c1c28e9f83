"""Atomic writes and strict JSON: how every file of the project is written and how foreign JSON is read.

A write goes to ``NAME.tmp`` beside the target and is renamed over it, so a kill or a full disk
never leaves a half file under the real name (and the temporary file is removed when the write
fails). JSON is written strictly: a non-finite float (NaN, +-inf) becomes ``null``, never the bare
``NaN`` that other JSON readers refuse.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Let ``write`` fill a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or a failed writer leaves no stray temporary file
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def finite(obj: Any) -> Any:
    """Return ``obj`` with every non-finite float (also inside lists and dicts) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def strict_dumps(obj: Any, indent: int | None = 1) -> str:
    """Return strict JSON for ``obj`` (non-finite floats as null)."""
    return json.dumps(finite(obj), indent=indent, allow_nan=False)


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write ``obj`` as strict JSON, atomically."""
    return atomic_write_text(path, strict_dumps(obj) + "\n")


def _refuse_constant(name: str) -> Any:
    """Refuse NaN / Infinity, which strict JSON does not have."""
    raise ValueError(f"{name} is not valid JSON (write null for a missing number)")


def strict_loads(text: str) -> Any:
    """Parse strict JSON; raise ValueError for NaN/Infinity, bad syntax or nesting too deep to read."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
