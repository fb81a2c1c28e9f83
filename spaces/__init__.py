"""Search spaces: the contract (``spaces.base``), a toy space and NAS-Bench-201."""

from __future__ import annotations

import importlib
from typing import Any

from spaces.base import Arch, CategoricalSpace, SearchSpace
from spaces.errors import InvalidArchError, UnknownSpaceError

__all__ = ["Arch", "CategoricalSpace", "InvalidArchError", "SearchSpace", "UnknownSpaceError", "from_config"]


def from_config(config: dict[str, Any]) -> SearchSpace:
    """Rebuild a space from its ``config()`` dict (``_target_`` plus constructor arguments)."""
    args = dict(config)
    target = str(args.pop("_target_", ""))
    module_name, _, class_name = target.rpartition(".")
    # Only classes of this package are built from files, never an arbitrary import path.
    if not module_name.startswith("spaces"):
        raise UnknownSpaceError(f"space target {target!r} is not a class under 'spaces.'")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise UnknownSpaceError(f"space target {target!r} cannot be imported: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise UnknownSpaceError(f"space target {target!r} is not a SearchSpace")
    return cls(**args)
