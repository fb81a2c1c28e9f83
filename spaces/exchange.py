"""Exchange formats of a shrunk space for other searchers, each with its reader.

- ``json``: the canonical file (``shrunk_space.schema.json``); lossless.
- ``list``: one arch string per line, pockets in order; loses pockets and scores.
- ``naslib``: a JSON list of labelled archs ``{"arch", "compact", "label", "pocket"}``;
  ``compact`` is the space's compact tuple (NB201: NASLib's op indices in NASLib's edge order),
  ``label`` the search score (null if never evaluated; then ``predicted`` holds the surrogate's
  mean when the method filled the pocket).
- ``configspace``: a ConfigSpace with one categorical per decision holding the options the
  members use. A union of pockets is not a product of per-decision choices: when the product holds
  at most ``FORBIDDEN_LIMIT`` non-members each gets a forbidden clause (exact); otherwise it is
  LOSSY and ``expansion_factor`` = product size / shrunk size says by how much. Both are in the side
  file ``configspace.meta.json`` (ConfigSpace's writer drops ``meta``).
- ``optuna``: ``{"param", "choices", "seed_ids"}``: one categorical over the members' arch strings
  plus the indices (in ``choices``) of the pocket seeds to enqueue; see ``spaces.optuna_adapter``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spaces.base import CategoricalSpace, SearchSpace
from spaces.files import atomic_write, strict_dumps, strict_loads
from spaces.shrunk import Pocket, ShrunkSpace, ShrunkSpaceError

FORMATS = ("json", "list", "naslib", "configspace", "optuna")
FILENAMES = {"json": "shrunk_space.json", "list": "archs.txt", "naslib": "naslib_archs.json",
             "configspace": "configspace.json", "optuna": "optuna_space.json"}
CONFIGSPACE_NOTE = "configspace.meta.json"  # ConfigSpace's JSON writer drops ``meta``: it travels beside the file


def _single_pocket(base: SearchSpace, archs: list[str], scores: list[float | None], source: str) -> ShrunkSpace:
    """Wrap a flat list of archs (formats without pockets) as one pocket."""
    if not archs:
        raise ShrunkSpaceError(f"{source}: holds no architecture")
    members = tuple(zip(archs, scores, strict=True))
    return ShrunkSpace(base, [Pocket(0, archs[0], scores[0], 0, members)], provenance={"imported_from": source})


def write_list(shrunk: ShrunkSpace, path: Path) -> None:
    """Write one arch string per line, atomically."""
    atomic_write(path, _writer(shrunk, "list"))


def read_list(path: Path, base: SearchSpace) -> ShrunkSpace:
    """Read a list file back (as a single pocket), naming a bad line."""
    archs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            archs.append(_checked(base, line.strip(), f"{path} line {number}"))
    return _single_pocket(base, archs, [None] * len(archs), str(path))


def _checked(base: SearchSpace, text: str, where: str) -> str:
    """Return the canonical string of ``text`` or raise naming ``where``."""
    try:
        return base.to_str(base.from_str(text))
    except ValueError as err:
        raise ShrunkSpaceError(f"{where}: {err}") from None


def naslib_records(shrunk: ShrunkSpace) -> list[dict[str, Any]]:
    """Return the labelled-arch records."""
    base = _categorical(shrunk.base, "naslib")
    pocket_of = {a: p.id for p in shrunk.pockets for a, _ in p.members}
    records = []
    for arch in shrunk.arch_strs():
        record = {"arch": arch, "compact": list(base.to_compact(base.from_str(arch))), "label": shrunk.score(arch),
                  "pocket": pocket_of.get(arch)}
        guess = shrunk.prediction(arch)
        records.append({**record, "predicted": guess[0]} if guess else record)
    return records


def read_naslib(path: Path, base: SearchSpace) -> ShrunkSpace:
    """Read labelled archs back from their compact tuples, naming a bad record."""
    space = _categorical(base, "naslib")
    records = _json(path)
    if not isinstance(records, list):
        raise ShrunkSpaceError(f"{path}: expected a JSON list of labelled archs")
    archs, labels = [], []
    for i, record in enumerate(records):
        try:
            archs.append(space.to_str(space.from_compact(record["compact"])))
            labels.append(None if record.get("label") is None else float(record["label"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ShrunkSpaceError(f"{path}: record {i} field 'compact'/'label': {err}") from None
    return _single_pocket(space, archs, labels, str(path))


# Non-members the ConfigSpace excludes with one forbidden clause each; beyond it (or beyond 3 per member, where
# ConfigSpace's rejection sampling slows to a crawl) the export stays lossy and the side file says by how much.
FORBIDDEN_LIMIT = 500


def configspace(shrunk: ShrunkSpace) -> tuple[Any, float]:
    """Return (ConfigurationSpace, expansion factor): one categorical per decision over the members' options.

    The product re-expands the union of pockets by ``factor``; when it holds at most ``FORBIDDEN_LIMIT``
    non-members, each gets a forbidden clause and the space samples members only (factor then 1.0).
    """
    import itertools

    from ConfigSpace import Categorical, ConfigurationSpace, ForbiddenAndConjunction, ForbiddenEqualsClause

    base = _categorical(shrunk.base, "configspace")
    used = [dict.fromkeys(arch[d] for arch in shrunk) for d in range(len(base.decisions))]
    choices = [[o for o in base.options[d] if o in used[d]] for d in range(len(base.decisions))]
    product = math.prod(len(c) for c in choices)
    exact = product - shrunk.size() <= min(FORBIDDEN_LIMIT, 3 * shrunk.size())
    factor = 1.0 if exact else product / max(1, shrunk.size())
    meta = {"lossy": not exact, "expansion_factor": factor, "base_space": base.config(), "shrunk_size": shrunk.size()}
    cs = ConfigurationSpace(name=f"{base.name}-shrunk", meta=meta)
    first = base.from_str(shrunk.arch_strs()[0])  # the default configuration must be a member (forbiddens check it)
    params = [Categorical(_param(d), c, default=first[i]) for i, (d, c) in enumerate(zip(base.decisions, choices, strict=True))]
    cs.add(params)
    if exact:
        members = set(shrunk.arch_strs())
        cs.add([ForbiddenAndConjunction(*(ForbiddenEqualsClause(p, o) for p, o in zip(params, combo, strict=True)))
                for combo in itertools.product(*choices) if base.to_str(tuple(combo)) not in members])
    return cs, factor


def configspace_note(shrunk: ShrunkSpace, factor: float) -> dict[str, Any]:
    """Return the side file of the ConfigSpace export: what ConfigSpace's writer drops (its meta) and what it loses."""
    lossy = factor > 1.0
    return {"lossy": lossy, "expansion_factor": factor, "shrunk_size": shrunk.size(), "members_file": FILENAMES["list"],
            "note": (f"the per-decision product holds {factor:.1f}x the shrunk space's archs: a searcher on "
                     "configspace.json also proposes non-members; check them against archs.txt" if lossy else
                     "forbidden clauses exclude every non-member of the per-decision product: it samples members only")}


def _param(decision: str) -> str:
    """Return a ConfigSpace-friendly parameter name for a decision."""
    return "".join(ch if ch.isalnum() else "_" for ch in decision)


def read_configspace(path: Path, base: SearchSpace) -> list[list[str]]:
    """Return the per-decision options of a ConfigSpace file (its product is the re-expanded space)."""
    from ConfigSpace import ConfigurationSpace

    space = _categorical(base, "configspace")
    try:
        cs = ConfigurationSpace.from_json(path)
    except Exception as err:  # ConfigSpace raises several types on a malformed file
        raise ShrunkSpaceError(f"{path}: not a ConfigSpace JSON file ({err})") from None
    names = [_param(d) for d in space.decisions]
    missing = [n for n in names if n not in cs]
    if missing:
        raise ShrunkSpaceError(f"{path}: lacks hyperparameter {missing[0]!r} of space {space.name}")
    return [list(cs[n].choices) for n in names]


def optuna_space(shrunk: ShrunkSpace) -> dict[str, Any]:
    """Return the categorical over the members' arch strings and the indices of the seeds to enqueue."""
    ids = {a: i for i, a in enumerate(shrunk.arch_strs())}
    return {"param": "arch_id", "choices": shrunk.arch_strs(),
            "seed_ids": [ids[p.seed] for p in shrunk.pockets if p.seed in ids]}


def read_optuna(path: Path, base: SearchSpace) -> ShrunkSpace:
    """Read an optuna space file back, naming a bad field."""
    data = _json(path)
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise ShrunkSpaceError(f"{path}: field 'choices' must be a list of arch strings")
    archs = [_checked(base, str(a), f"{path} choices[{i}]") for i, a in enumerate(data["choices"])]
    return _single_pocket(base, archs, [None] * len(archs), str(path))


def export(shrunk: ShrunkSpace, out: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write every requested format into ``out``; return format -> path.

    Every format is built in memory first, so a space that cannot be exported in one format
    leaves no file written; each file is then written atomically.
    """
    writers = {fmt: _writer(shrunk, fmt) for fmt in formats}
    out.mkdir(parents=True, exist_ok=True)
    return {fmt: atomic_write(out / FILENAMES[fmt], write) for fmt, write in writers.items()}


def _writer(shrunk: ShrunkSpace, fmt: str) -> Callable[[Path], None]:
    """Build format ``fmt`` of the space and return what writes it to a path."""
    if fmt == "configspace":
        cs, factor = configspace(shrunk)
        note = strict_dumps(configspace_note(shrunk, factor)) + "\n"

        def write(path: Path) -> None:
            cs.to_json(path)
            atomic_write(path.with_name(CONFIGSPACE_NOTE), lambda tmp: tmp.write_text(note))

        return write
    text = {"json": lambda: strict_dumps(shrunk.to_dict()) + "\n",
            "list": lambda: "".join(f"{a}\n" for a in shrunk.arch_strs()),
            "naslib": lambda: strict_dumps(naslib_records(shrunk)) + "\n",
            "optuna": lambda: strict_dumps(optuna_space(shrunk)) + "\n"}[fmt]()
    return lambda path: path.write_text(text)


def _json(path: Path) -> Any:
    """Read JSON with a one-line error."""
    try:
        return strict_loads(Path(path).read_text())
    except FileNotFoundError:
        raise ShrunkSpaceError(f"{path}: not found") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ShrunkSpaceError(f"{path}: not valid JSON: {err}") from None


def _categorical(space: SearchSpace, fmt: str) -> CategoricalSpace:
    """Return the space if it has per-decision options, else refuse the format."""
    if not isinstance(space, CategoricalSpace):
        raise ShrunkSpaceError(f"format {fmt!r} needs a space with per-decision options; {space.name} has none")
    return space
