"""A shrunk space: a union of pockets over a base space, consumable like a space.

File format (``shrunk_space.json``, ``format`` = "nas-shrink/shrunk-space", ``version`` = 1)::

    {
      "format": "nas-shrink/shrunk-space", "version": 1,
      "base_space": {"name": "nb201", "config": {"_target_": ..., ...}, "size": 15625},
      "metric": "val_acc",                  # what member scores measure
      "size": 57,                           # distinct members over all pockets
      "pockets": [{"id": 0, "seed": ARCH, "seed_score": 91.6, "radius": 2,
                   "members": [{"arch": ARCH, "score": 91.6},
                               {"arch": ARCH, "score": null, "predicted": 91.2, "uncertainty": 0.4}, ...]}, ...],
                   # a member never evaluated has score null; the surrogate's mean and spread
                   # (``predicted``, ``uncertainty``) say why the method believes it good
                   # optional "costs": {"flops": [min, max], "latency_pixel3": [min, max]} under budgets
                   # optional "region": "ball" -> the pocket is every arch within ``radius``
                   # of its seed (members = the evaluated ones); default: exactly its members
      "provenance": {"run_id": ..., "seed": 0, "round": 3, "config": {...}, ...}
    }
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from spaces import from_config
from spaces.base import Arch, SearchSpace
from spaces.errors import DomainError
from spaces.files import strict_loads, write_json_atomic

FORMAT, VERSION = "nas-shrink/shrunk-space", 1


class ShrunkSpaceError(DomainError, ValueError):
    """A shrunk-space file that cannot be read; names the file and the field."""


@dataclass(frozen=True)
class Pocket:
    """One locality: its seed, hop radius and explicit members (best first; score None = not evaluated)."""

    id: int
    seed: str
    seed_score: float | None
    radius: int
    members: tuple[tuple[str, float | None], ...]
    region: str = "members"  # "members": exactly the members; "ball": every arch within radius of seed
    predictions: tuple[tuple[float, float] | None, ...] = ()  # per member: surrogate (mean, spread), or None
    costs: dict[str, tuple[float, float]] | None = None  # under resource budgets: cost -> (min, max) over members


LIST_LIMIT = 1_000_000  # ball pockets holding more archs than this are sampled, never listed


class ShrunkSpace:
    """Union of pockets over ``base``; offers size, membership, uniform sampling, iteration.

    Pockets list their members explicitly, or (``region="ball"``, categorical base spaces) stand
    for every arch within ``radius`` of their seed: then size and uniform sampling are exact
    without enumerating anything (``spaces.regions.BallUnion``), even over a 1e19-arch space.
    """

    def __init__(self, base: SearchSpace, pockets: list[Pocket], metric: str = "score",
                 provenance: dict[str, Any] | None = None) -> None:
        self.base, self.pockets, self.metric = base, pockets, metric
        self.provenance = provenance or {}
        seen: dict[str, float | None] = {}
        self._predicted: dict[str, tuple[float, float]] = {}
        for pocket in pockets:
            for (arch, score), guess in zip(pocket.members, _padded(pocket), strict=True):
                key = base.to_str(base.from_str(arch))
                seen.setdefault(key, score)
                if guess is not None:
                    self._predicted.setdefault(key, guess)
        self._scores = seen
        self._members = list(seen)
        self._balls = _ball_union(base, [p for p in pockets if p.region == "ball"])
        inside = self._balls is not None
        self._extras = [a for a in self._members if not (inside and base.from_str(a) in self._balls)]

    def size(self) -> int:
        """Return the number of distinct architectures in the union of pockets."""
        return len(self._extras) + (self._balls.size() if self._balls is not None else 0)

    def members(self) -> list[str]:
        """Return the explicitly listed (evaluated) member strings, in pocket order."""
        return list(self._members)

    def __len__(self) -> int:
        return self.size()

    def __contains__(self, arch: Arch | str) -> bool:
        key = arch if isinstance(arch, str) else self.base.to_str(arch)
        if key in self._scores:
            return True
        return self._balls is not None and self.base.from_str(key) in self._balls

    def __iter__(self) -> Iterator[Arch]:
        return (self.base.from_str(a) for a in self.arch_strs())

    def arch_strs(self) -> list[str]:
        """Return every member string: listed members in pocket order, then the rest of the balls."""
        if self._balls is None:
            return list(self._members)
        if self.size() > LIST_LIMIT:
            raise ShrunkSpaceError(f"shrunk space holds {self.size():,} archs, more than {LIST_LIMIT:,} to list; "
                                   "use sample() or members()")
        out = dict.fromkeys(self._members)
        out.update(dict.fromkeys(self.base.to_str(a) for a in self._balls.members()))
        return list(out)

    def score(self, arch: Arch | str) -> float | None:
        """Return the recorded score of a member (None if it was never evaluated)."""
        key = arch if isinstance(arch, str) else self.base.to_str(arch)
        if key not in self._scores and key in self:
            return None
        return self._scores[key]

    def prediction(self, arch: Arch | str) -> tuple[float, float] | None:
        """Return the surrogate's (mean, spread) for an unevaluated listed member, else None."""
        return self._predicted.get(arch if isinstance(arch, str) else self.base.to_str(arch))

    def evaluated_count(self) -> int:
        """Return how many listed members have a recorded score."""
        return sum(s is not None for s in self._scores.values())

    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw one member uniformly at random."""
        size = self.size()
        if not size:
            raise ShrunkSpaceError("cannot sample from an empty shrunk space")
        pick = int(rng.integers(size))
        if pick < len(self._extras):
            return self.base.from_str(self._extras[pick])
        return self._balls.sample(rng)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form of the file format above."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "base_space": {"name": self.base.name, "config": self.base.config(), "size": self.base.size()},
            "metric": self.metric,
            "size": self.size(),
            "pockets": [_pocket_dict(p) for p in self.pockets],
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write the shrunk space as JSON."""
        return write_json_atomic(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path, tracking_uri: str | None = None) -> ShrunkSpace:
        """Read a shrunk-space file or ``runs:/<run_id>/shrunk_space.json``; errors name the bad field."""
        if str(path).startswith("runs:/"):
            path = _download(str(path), tracking_uri)
        path = Path(path)
        if not path.is_file():
            raise ShrunkSpaceError(f"shrunk space {str(path)!r} not found; run `python -m pipeline` to make one")
        try:
            data = strict_loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ShrunkSpaceError(f"shrunk space {str(path)!r} is not valid JSON: {err}") from None
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError, RecursionError) as err:
            raise ShrunkSpaceError(f"shrunk space {str(path)!r}: {_reason(err)}") from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShrunkSpace:
        """Build from the file format's dict, validated against ``shrunk_space.schema.json``."""
        if isinstance(data, dict) and data.get("format") == FORMAT and data.get("version") != VERSION:
            raise ValueError(f"field 'version' is {data.get('version')!r}; this reader knows version {VERSION}")
        validate_schema(data)
        base = from_config(data["base_space"]["config"])
        if data["base_space"]["size"] != base.size():
            raise ValueError(f"field 'base_space/size' is {data['base_space']['size']} but {base.name} "
                             f"has {base.size()} archs")
        pockets = [_canonical_pocket(base, _pocket_from(p), i) for i, p in enumerate(data["pockets"])]
        ids = [p.id for p in pockets]
        if len(set(ids)) != len(ids):
            raise ValueError(f"field 'pockets': pocket id {next(i for i in ids if ids.count(i) > 1)} appears twice")
        space = cls(base, pockets, data.get("metric", "score"), data.get("provenance"))
        if "size" in data and data["size"] != space.size():
            raise ValueError(f"field 'size' is {data['size']} but the pockets hold {space.size()} archs")
        return space


SCHEMA_PATH = Path(__file__).with_name("shrunk_space.schema.json")


def validate_schema(data: Any) -> None:
    """Raise ValueError naming the first field that breaks the JSON schema."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"field '{where}': {error.message}")


def _download(uri: str, tracking_uri: str | None) -> Path:
    """Fetch an MLflow artifact URI to a temporary folder."""
    import tempfile

    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp(),
                                                        tracking_uri=tracking_uri))
    except Exception as err:  # MLflow raises several types for a missing run or artifact
        raise ShrunkSpaceError(f"cannot fetch {uri!r} from MLflow ({tracking_uri or 'default store'}): "
                               f"{str(err).splitlines()[0]}") from None


def _ball_union(base: SearchSpace, balls: list[Pocket]) -> Any:
    """Return the BallUnion of the ball pockets (None when there are none)."""
    if not balls:
        return None
    from spaces.base import CategoricalSpace
    from spaces.regions import BallUnion

    if not isinstance(base, CategoricalSpace):
        raise ValueError(f"pockets with region 'ball' need a categorical base space; {base.name} pockets must "
                         "list their members")
    return BallUnion(base, [base.from_str(p.seed) for p in balls], [p.radius for p in balls])


def _padded(pocket: Pocket) -> tuple[tuple[float, float] | None, ...]:
    """Return the pocket's per-member predictions, None-padded to its member count."""
    return pocket.predictions + (None,) * (len(pocket.members) - len(pocket.predictions))


def _pocket_dict(pocket: Pocket) -> dict[str, Any]:
    """Return the JSON form of a pocket."""
    members = []
    for (arch, score), guess in zip(pocket.members, _padded(pocket), strict=True):
        extra = {"predicted": guess[0], "uncertainty": guess[1]} if guess is not None else {}
        members.append({"arch": arch, "score": score, **extra})
    out = {"id": pocket.id, "seed": pocket.seed, "seed_score": pocket.seed_score, "radius": pocket.radius,
           "members": members}
    if pocket.costs:
        out["costs"] = {k: list(v) for k, v in pocket.costs.items()}
    return {**out, "region": "ball"} if pocket.region == "ball" else out


def _pocket_from(data: dict[str, Any]) -> Pocket:
    """Build one pocket from its (schema-validated) dict."""
    members = tuple((str(m["arch"]), _score(m["score"])) for m in data["members"])
    guesses = tuple((_score(m["predicted"]), _score(m.get("uncertainty") or 0.0)) if m.get("predicted") is not None else None
                    for m in data["members"])
    costs = {str(k): (float(v[0]), float(v[1])) for k, v in data["costs"].items()} if data.get("costs") else None
    return Pocket(int(data["id"]), str(data["seed"]), _score(data["seed_score"]), int(data["radius"]), members,
                  str(data.get("region", "members")), guesses if any(g is not None for g in guesses) else (), costs)


def _score(value: Any) -> float | None:
    """Return a member score (finite, or null when the member was never evaluated)."""
    if value is None:
        return None
    if not math.isfinite(float(value)):
        raise ValueError(f"score {value!r} is not finite; write null for an arch never evaluated")
    return float(value)


def _canonical_pocket(base: SearchSpace, pocket: Pocket, index: int) -> Pocket:
    """Return the pocket with its seed and members checked and in canonical form, naming a bad one."""
    def canonical(arch: str, field: str) -> str:
        try:
            return base.to_str(base.canonical(base.from_str(arch)))
        except ValueError as err:
            raise ValueError(f"field 'pockets/{index}/{field}': {err}") from None

    members = tuple((canonical(a, f"members/{j}/arch"), score) for j, (a, score) in enumerate(pocket.members))
    return replace(pocket, seed=canonical(pocket.seed, "seed"), members=members)


def _reason(err: Exception) -> str:
    """Return a one-line reason for a parsing error."""
    return f"missing field {err}" if isinstance(err, KeyError) else str(err)
