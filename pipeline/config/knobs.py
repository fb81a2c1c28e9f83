"""A knob's declaration: its default, its rule (type, range or choices) and, where it has one, the key it
follows. Light (dataclasses and the domain error only): the CLI checks a whole config with it before
anything heavy loads.

A config class declares each field once, ``radius: int = knob(2, Int(0), follows="pockets.radius")``;
``check`` then refuses a bad value of any node by its full key path (``shrink.pockets.radius=-1 must
be an integer >= 0``), and the schemas (``pipeline/schema.py``) read the defaults and the ``follows``
links from the same fields.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.errors import ConfigError


@dataclass(frozen=True)
class Int:
    """An integer (not a bool) >= ``low``, or one of ``also`` (auto, null)."""

    low: int = 0
    also: tuple[Any, ...] = ()

    def ok(self, value: Any) -> bool:
        """Tell whether ``value`` obeys the rule."""
        return value in self.also or (isinstance(value, int) and not isinstance(value, bool) and value >= self.low)

    def text(self) -> str:
        """Say what the value must be, as the end of an error line."""
        return f"must be an integer >= {self.low}" + _also(self.also)


@dataclass(frozen=True)
class Number:
    """A finite number (int or float, not a bool) >= / > ``low`` and, when set, < / <= ``high``."""

    low: float = 0.0
    high: float | None = None
    strict: bool = False  # low itself excluded
    closed: bool = False  # high itself included
    also: tuple[Any, ...] = ()

    def ok(self, value: Any) -> bool:
        """Tell whether ``value`` obeys the rule."""
        if value in self.also:
            return True
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        above = value > self.low if self.strict else value >= self.low
        below = self.high is None or (value <= self.high if self.closed else value < self.high)
        return above and below

    def text(self) -> str:
        """Say what the value must be, as the end of an error line."""
        if self.high is not None:
            return (f"must lie in {'(' if self.strict else '['}{_num(self.low)}, {_num(self.high)}"
                    f"{']' if self.closed else ')'}" + _also(self.also))
        return f"must be a finite number {'>' if self.strict else '>='} {_num(self.low)}" + _also(self.also)


@dataclass(frozen=True)
class OneOf:
    """One of the listed choices."""

    choices: tuple[Any, ...]

    def ok(self, value: Any) -> bool:
        """Tell whether ``value`` obeys the rule."""
        return any(value == c and type(value) is type(c) for c in self.choices)

    def text(self) -> str:
        """Say what the value must be, as the end of an error line."""
        return "is not one of " + ", ".join("null" if c is None else str(c).lower() if isinstance(c, bool) else str(c)
                                     for c in self.choices)


Rule = Int | Number | OneOf


def _also(values: tuple[Any, ...]) -> str:
    """Name the extra values a rule accepts."""
    return "".join(f" or {'null' if v is None else v}" for v in values)


def _num(value: float) -> str:
    """Write a bound without a needless ``.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def knob(default: Any, rule: Rule | None = None, follows: str | None = None) -> Any:
    """Declare a field: its default, its rule, and the sibling node's key whose value it takes unless set."""
    meta = {"rule": rule, "follows": follows}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def rule_of(f: dataclasses.Field) -> Rule | None:
    """Return the rule a field declares (None: its type alone)."""
    return f.metadata.get("rule")


def follows(f: dataclasses.Field) -> str | None:
    """Return ``node.key`` of the sibling node whose value this field takes unless set."""
    return f.metadata.get("follows")


def check(cls: type, values: Mapping[str, Any], path: str, skip: Collection[str] = ()) -> None:
    """Refuse the first value of ``values`` that breaks its field's rule in ``cls``, naming ``path.key``.

    Nested config classes are checked under their own key; ``skip`` holds paths (below ``path``)
    whose value is another key's (an interpolation), which is checked, and named, where it is set.
    """
    for f in dataclasses.fields(cls):
        if f.name not in values or f.name in skip:
            continue
        value, key = values[f.name], f"{path}.{f.name}" if path else f.name
        inner = _config_class(f)
        if inner is not None and isinstance(value, Mapping):
            check(inner, value, key, {s.partition(".")[2] for s in skip if s.startswith(f"{f.name}.")})
            continue
        rule = rule_of(f)
        if rule is not None and not rule.ok(value):
            raise ConfigError(f"{key}={value!r} {rule.text()}")


def check_mapping(rules: Mapping[str, Rule], values: Mapping[str, Any], path: str) -> None:
    """Refuse the first value of ``values`` that breaks its rule in ``rules`` (a group built by ``_target_``)."""
    for key, value in values.items():
        rule = rules.get(key)
        if rule is not None and not rule.ok(value):
            raise ConfigError(f"{path}.{key}={value!r} {rule.text()}")


def _config_class(f: dataclasses.Field) -> type | None:
    """Return the config dataclass a field nests (its default factory's class), else None."""
    factory = f.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) else None

