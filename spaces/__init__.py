"""Search spaces: the contract (``spaces.base``), a toy space and NAS-Bench-201."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from spaces.base import Arch, CategoricalSpace, SearchSpace
from spaces.errors import InvalidArchError, UnknownSpaceError

__all__ = ["Arch", "CategoricalSpace", "InvalidArchError", "SearchSpace", "UnknownSpaceError", "from_config"]


def from_config(config: dict[str, Any]) -> SearchSpace:
    """Rebuild a space from its ``config()`` dict (``_target_`` plus constructor arguments)."""
    args = dict(config)
    target = str(args.pop("_target_", ""))
    module_name, _, class_name = target.rpartition(".")
    # A file never makes us import an arbitrary module: this package's spaces, or a user's space
    # whose module this process has already imported (Hydra built it from the user's config).
    if not (module_name == "spaces" or module_name.startswith("spaces.") or module_name in sys.modules):
        raise UnknownSpaceError(f"space target {target!r} is neither a class under 'spaces.' nor in a module this "
                                f"process has imported; import {module_name or target} first")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise UnknownSpaceError(f"space target {target!r} cannot be imported: {err}") from None
    if not (isinstance(cls, type) and issubclass(cls, SearchSpace)):
        raise UnknownSpaceError(f"space target {target!r} is not a SearchSpace")
    return cls(**args)
