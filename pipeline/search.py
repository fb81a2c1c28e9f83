"""`python -m pipeline.search`: search a shrunk space (or the full space) with the target's evaluator.

A shrunk space is made once (``python -m pipeline``, on the same task or a cheaper source: another
dataset, a proxy, a latency budget on another device) and searched here as often as needed:

    python -m pipeline.search shrunk=outputs/.../emit/shrunk_space.json searcher=rea budget=50
    python -m pipeline.search shrunk=runs:/<run_id>/shrunk_space.json dataset=cifar100 evaluator=benchmark
    python -m pipeline.search searcher=rea budget=50          # the full space, for the comparison

The searcher (``pipeline/searchers``) proposes members of the domain; every new arch costs one
target evaluation. The run is one MLflow run (experiment ``nas-shrink-search``) tagged with the
shrink run's id and with the shrunk space as a dataset input. Every evaluation is appended to
``journal.jsonl`` as it finishes: ``resume=DIR`` replays them (the searchers are deterministic given
their seed and scores) and continues where the search stopped.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.errors import DOMAIN_ERRORS, ConfigError
from pipeline.schema import register

SEARCHER_NAMES = ("rea", "local_search", "random", "tpe", "epnas")
JOURNAL, RESULT, RUN_FILE = "journal.jsonl", "search.json", "run.json"
IGNORED_IN_MATCH = ("path", "table", "root", "device")  # where a task's files lie, not what it scores


def check_settings(cfg: DictConfig) -> None:
    """Refuse, by key, a setting no search can run with, before anything is built."""
    if cfg.searcher not in SEARCHER_NAMES:
        from pipeline.cli import closest

        raise ConfigError(f"searcher={cfg.searcher!r} is not a searcher{closest(str(cfg.searcher), list(SEARCHER_NAMES))} "
                          f"(searchers: {', '.join(SEARCHER_NAMES)})")
    if str(cfg.reuse_scores).lower() not in ("auto", "true", "false"):
        raise ConfigError(f"reuse_scores={cfg.reuse_scores!r} is not one of auto, true, false")
    if cfg.searcher == "tpe":
        import importlib.util

        if importlib.util.find_spec("optuna") is None:
            raise ConfigError("searcher=tpe needs Optuna, which is not installed; run: pip install optuna")


@dataclass(frozen=True)
class Source:
    """The searched domain and what made it: the shrunk space (None for the full space) and its shrink run."""

    shrunk: Any
    location: str
    run_id: str | None
    evaluations: int | None  # the shrink run's evaluations (None: not recorded, or the full space)
    config: dict[str, Any]


def load_source(cfg: DictConfig, space: Any) -> Source:
    """Load the shrunk space of ``cfg.shrunk`` and check it is a subspace of ``space``."""
    if cfg.shrunk in (None, "", "none", "full"):
        return Source(None, "full space", None, None, {})
    from spaces.shrunk import ShrunkSpace

    location = str(cfg.shrunk)
    if not location.startswith("runs:/"):
        location = str(Path(location).expanduser())
    shrunk = ShrunkSpace.load(location, tracking_uri=str(cfg.tracking.uri))
    if shrunk.base.name != space.name:
        raise ConfigError(f"shrunk={cfg.shrunk} is a subspace of {shrunk.base.name!r}, but space={space.name}; "
                          f"set space={shrunk.base.name}")
    provenance = shrunk.provenance or {}
    spent = provenance.get("evaluations")
    return Source(shrunk, location, provenance.get("run_id"), int(spent) if spent is not None else None,
                  dict(provenance.get("config") or {}))


def scored_here(source: Source, cfg: DictConfig) -> bool:
    """Tell whether the shrink run scored archs exactly as this target does (same evaluator and dataset settings)."""
    def plain(node: Any) -> dict[str, Any]:
        data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node or {})
        return {k: v for k, v in data.items() if k not in IGNORED_IN_MATCH}

    theirs = source.config
    return bool(theirs) and all(plain(theirs.get(g)) == plain(cfg.get(g)) for g in ("evaluator", "dataset"))


def known_scores(source: Source, cfg: DictConfig) -> dict[str, float]:
    """Return the member scores the search may use for free (the shrink run's, when they are this target's)."""
    setting = str(cfg.reuse_scores).lower()
    if source.shrunk is None or setting == "false" or (setting == "auto" and not scored_here(source, cfg)):
        return {}
    scores = {a: source.shrunk.score(a) for a in source.shrunk.members()}
    return {a: float(s) for a, s in scores.items() if s is not None and math.isfinite(s)}


class Journal:
    """Every target evaluation of a search, appended as it finishes; a rerun replays it instead of re-evaluating."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.recorded: dict[str, float] = {}
        if path.exists():
            text = path.read_text()
            for line in text.splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a kill: that evaluation is redone
                    continue
                self.recorded[row["arch"]] = float(row["score"]) if row["score"] is not None else -math.inf
            if text and not text.endswith("\n"):
                with path.open("a") as handle:  # end the torn line, so the next record starts on its own
                    handle.write("\n")

    def append(self, rows: list[tuple[str, float]]) -> None:
        """Append ``rows`` and flush them to disk."""
        with self.path.open("a") as handle:
            for arch, score in rows:
                handle.write(json.dumps({"arch": arch, "score": score if math.isfinite(score) else None}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def journaled(many: Callable[[list[str]], list[float]], journal: Journal) -> Callable[[list[str]], list[float]]:
    """Wrap a batch scorer: archs the journal holds are replayed, the rest scored and appended."""
    def score(archs: list[str]) -> list[float]:
        new = [a for a in archs if a not in journal.recorded]
        if new:
            values = many(new)
            journal.append(list(zip(new, values, strict=True)))
            journal.recorded.update(zip(new, values, strict=True))
        return [journal.recorded[a] for a in archs]

    return score


@dataclass(frozen=True)
class SearchResult:
    """What a search found and spent."""

    run_id: str
    run_dir: Path
    best_arch: str
    best_score: float
    spent: int
    replayed: int
    known: int
    source: Source
    figures: dict[str, float]
    url: str


def judge(truth: Mapping[str, float] | None, table: Mapping[str, Mapping[str, float]] | None, pick: str,
          metric: str) -> dict[str, float]:
    """Return the pick's test accuracy and regrets against the best test and the best-validation arch."""
    if not truth or pick not in truth:
        return {}
    best = max(truth.values())
    out = {"pick_test_acc": truth[pick], "regret": best - truth[pick]}
    if table:
        oracle = max((a for a in table if a in truth and math.isfinite(table[a].get(metric, math.nan))),
                     key=lambda a: (table[a][metric], a), default=None)
        if oracle is not None:
            out["val_oracle_test_acc"] = truth[oracle]
            out["val_oracle_regret"] = truth[oracle] - truth[pick]
    return out


def search(cfg: DictConfig, run_dir: Path) -> SearchResult:
    """Search the configured domain with the target evaluator, logging one MLflow run; resume from ``run_dir``."""
    from pipeline import record
    from pipeline.artifacts import read_json, write_json
    from pipeline.build import build, build_constraints, build_executor, check_constraints, ground_truth
    from pipeline.locks import exclusive
    from pipeline.searchers import SEARCHERS, FeasibleDomain, FullDomain, ShrunkDomain, evaluator_oracle
    from pipeline.tracking import Tracker

    check_settings(cfg)
    space, evaluator, dataset = build(cfg)
    source = load_source(cfg, space)
    constraints = build_constraints(cfg)
    if constraints.active:
        check_constraints(evaluator, constraints, Path(str(cfg.cache_dir)).expanduser(),
                          np.random.default_rng([int(cfg.seed), 7]))
    def feasible(arch: str) -> bool:
        return constraints.arch_violation(arch, space, evaluator) is None

    domain = FullDomain(space, feasible) if source.shrunk is None else (
        FeasibleDomain(ShrunkDomain(source.shrunk), feasible) if constraints.active else ShrunkDomain(source.shrunk))
    known = known_scores(source, cfg)
    truth = ground_truth(cfg.get("ground_truth", "auto"), space, evaluator)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = OmegaConf.to_container(cfg, resolve=True)
    with exclusive(run_dir / ".lock", f"search folder {run_dir}"):
        recorded = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).exists() else None
        theirs, ours = (_without(recorded["config"]) if recorded else {}), _without(settings)
        changed = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k)) if recorded else []
        if changed:
            raise ConfigError(f"{run_dir} holds a search with other settings ({', '.join(changed[:5])}); "
                              "resume it with its own settings or start a new folder")
        tracker = Tracker(str(cfg.tracking.uri), str(cfg.tracking.experiment))
        tags = {"searcher": str(cfg.searcher), "space": space.name, "domain": "shrunk" if source.shrunk else "full",
                "dataset": evaluator.tags().get("dataset", getattr(dataset, "name", "-")), "evaluator": evaluator.name,
                "git_sha": record.git_sha(), **({"shrink_run_id": source.run_id} if source.run_id else {})}
        name = f"search-{cfg.searcher}-{tags['domain']}-{space.name}-{tags['dataset']}-s{cfg.seed}"
        with tracker.run(name, None, tags, resume_id=(recorded or {}).get("run_id")) as run_id:
            write_json(run_dir / RUN_FILE, {"run_id": run_id, "tracking_uri": str(cfg.tracking.uri), "config": settings})
            tracker.params(run_id, record.plain_params(cfg))
            _log_inputs(tracker, run_id, cfg, source, evaluator, dataset)
            journal = Journal(run_dir / JOURNAL)
            replayed = len(journal.recorded)
            executor = build_executor(cfg)
            try:
                oracle = evaluator_oracle(evaluator, executor, int(cfg.budget), known,
                                          wrap=lambda many: journaled(many, journal))
                rng = np.random.default_rng([int(cfg.seed), SEARCHER_NAMES.index(str(cfg.searcher))])
                SEARCHERS[str(cfg.searcher)](domain, oracle, rng)
            finally:
                executor.close()
            if not oracle.cache:
                raise ConfigError(f"the search scored no architecture (budget={cfg.budget}); raise budget")
            best_arch, best_score = oracle.best()
            table = evaluator.table if evaluator.reads_table else None
            figures = {"spent": float(oracle.spent), "known_scores": float(len(known)), "best_score": best_score,
                       "domain_size": float(domain.size()),
                       **({"source_evaluations": float(source.evaluations)} if source.evaluations is not None else {}),
                       **judge(truth, table, best_arch, evaluator.metric)}
            tracker.metrics(run_id, {f"search/{k}": v for k, v in figures.items()})
            history = [{"arch": a, "score": s} for a, s in oracle.history]
            write_json(run_dir / RESULT, {"best_arch": best_arch, "best_score": best_score, "figures": figures,
                                          "history": history})
            tracker.tags(run_id, {"best_arch": best_arch})
            tracker.artifact(run_id, run_dir / RESULT)
    return SearchResult(run_id, run_dir, best_arch, best_score, oracle.spent, min(replayed, oracle.spent), len(known),
                        source, figures, tracker.url(run_id))


VOLATILE = ("progress", "resume")  # settings that change no result


def _without(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return the flattened settings that decide a search's result."""
    from pipeline.tracking import flatten

    return {k: v for k, v in flatten(dict(settings)).items() if k not in VOLATILE}


def _log_inputs(tracker: Any, run_id: str, cfg: DictConfig, source: Source, evaluator: Any, dataset: Any) -> None:
    """Log the target's data and the shrunk space searched as MLflow dataset inputs."""
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.data.sources import LocalArtifactDatasetSource

    from pipeline import record

    record.log_inputs(tracker, run_id, cfg, getattr(evaluator, "path", None), dataset)
    if source.shrunk is None:
        return
    digest = record.config_digest({"members": ",".join(sorted(source.shrunk.arch_strs()))})
    name = f"shrunk_space-{source.run_id[:8]}" if source.run_id else "shrunk_space"
    tracker.inputs(run_id, [(MetaDataset(LocalArtifactDatasetSource(source.location), name=name, digest=digest),
                             "search_space")])


def summary_lines(result: SearchResult, cfg: DictConfig) -> list[str]:
    """Return what the console shows at the end of a search."""
    source, figures = result.source, result.figures
    if source.shrunk is None:
        where = f"the full space ({int(figures['domain_size']):,} archs)"
    else:
        made = (source.config.get("shrink") or {}).get("method", "?")
        where = (f"shrunk space of {int(figures['domain_size']):,} archs ({source.location}; made by {made} on "
                 f"{_label(source.config, 'dataset')} with the {_label(source.config, 'evaluator')} evaluator)")
    lines = [f"searched: {where} with {cfg.searcher}, seed {cfg.seed}",
             f"best arch: {result.best_arch} ({result.best_score:.3f})",
             f"target evaluations: {result.spent} spent of budget {cfg.budget}"
             + (f" ({result.replayed} replayed from the journal)" if result.replayed else "")
             + (f"; {result.known} member scores of the shrink run reused as this target's" if result.known else "")]
    if source.shrunk is not None:
        reused = f"{source.evaluations}" if source.evaluations is not None else "not recorded"
        lines.append(f"source evaluations reused (the shrink run's): {reused}")
    if "pick_test_acc" in figures:
        line = f"judged by ground truth: test {figures['pick_test_acc']:.2f}, regret {figures['regret']:.2f}"
        if "val_oracle_regret" in figures:
            line += (f"; the best-validation arch's test {figures['val_oracle_test_acc']:.2f} "
                     f"(regret vs it {figures['val_oracle_regret']:+.2f})")
        lines.append(line)
    return lines


def _label(config: Mapping[str, Any], group: str) -> str:
    """Return a short name of a recorded group (cifar10, digits; train, benchmark) for the console."""
    node = config.get(group) or {}
    if node.get("name"):
        return str(node["name"])
    cls = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
    return cls.removesuffix("Evaluator").lower() or "?"


register()  # the typed schemas conf/search.yaml names (pipeline/schema.py), before Hydra composes


def _main(cfg: DictConfig) -> None:
    """Run the search in Hydra's run folder and print what it found."""
    from hydra.core.hydra_config import HydraConfig

    try:
        result = search(cfg, Path(HydraConfig.get().runtime.output_dir))
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    for line in summary_lines(result, cfg):
        print(line, flush=True)
    uri = str(cfg.tracking.uri)
    serve = "" if uri.startswith(("http://", "https://")) else f" after: mlflow ui --backend-store-uri {uri}"
    print(f"MLflow run id: {result.run_id}  (open {result.url}{serve})")
    print(f"search folder: {result.run_dir}")


def cli() -> None:
    """Console-script entry point (``nas-shrink-search``): check the command line, then search."""
    import hydra

    from pipeline import CONF_DIR
    from pipeline.cli import check, with_recorded_overrides
    from pipeline.help import HELP_FLAGS, render_help

    argv = sys.argv[1:]
    try:
        if any(a in HELP_FLAGS for a in argv):
            print(render_help(argv, "search"))
            return
        cfg = check(argv, "search")
        if cfg is not None and cfg.get("resume"):
            run_dir = Path(str(cfg.resume)).expanduser()
            if not (run_dir / RUN_FILE).is_file():
                raise ConfigError(f"resume={cfg.resume}: not a search folder (no {RUN_FILE}); give the folder a "
                                  "search printed as 'search folder: ...'")
            argv = [*with_recorded_overrides(argv, run_dir), f"hydra.run.dir={run_dir}"]
            cfg = check(argv, "search")
        if cfg is not None:
            check_settings(cfg)
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    sys.argv = [sys.argv[0], *argv]
    try:
        hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="search")(_main)()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: every finished evaluation is in the search folder's journal.jsonl; "
                 "continue with: python -m pipeline.search resume=<that folder>")


if __name__ == "__main__":
    cli()
