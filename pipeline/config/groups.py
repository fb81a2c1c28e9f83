"""The config classes of the run's other typed nodes: the round loop (the top of ``shrink``), its plan,
``tracking`` and ``constraints``; and the rules of the groups a ``_target_`` builds (executor,
evaluator, dataset, space), whose knobs are their constructors' arguments. Light, like
pipeline/config/stages.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from pipeline.config.knobs import Int, Number, OneOf, Rule, knob


@dataclass(kw_only=True)
class PlanCfg:
    """A method's stages: those of round 0, of later rounds ([]: one round), and which round is emitted."""

    first: list[str] = field(default_factory=list)
    later: list[str] = field(default_factory=list)
    choose: str = knob("best", OneOf(("best", "last")))  # best: the highest mean pocket score; last


@dataclass(kw_only=True)
class LoopCfg:
    """Knobs of the round loop itself (the top of ``shrink``; each stage's sit in its own node)."""

    method: str = "lissnas"  # the method's name (its stages are shrink.plan); set by its schema
    budget: int = knob(200, Int(1))  # total architectures evaluated in the run (initial sample + explored)
    max_rounds: int = knob(200, Int(1))  # hard cap; the budget or the plateau rule normally ends the run first
    patience: int = knob(20, Int(1))  # rounds without improvement (region=surrogate: of the 10 best scores) before stopping
    min_delta: float = knob(0.0, Number(0))  # improvements at or below this count as none


@dataclass(kw_only=True)
class TrackingCfg:
    """Knobs of the ``tracking`` group: where and how the run is recorded in MLflow."""

    uri: str = "sqlite:///mlflow.db"  # MLflow store: embedded SQLite, or a server (http://host:5000)
    experiment: str = "nas-shrink"
    run_name: Optional[str] = None  # noqa: UP045 - default: <method>-<space>-<dataset>-<evaluator>-s<seed> (+ a sweep's overrides)
    stage_runs: bool = False  # true: one nested run per stage (r0/evaluate, ...) under the invocation's run
    system_metrics: Any = knob("auto", OneOf((True, False, "auto")))  # CPU/GPU/memory every 10 s; auto: when it trains
    progress_every_s: float = knob(5.0, Number(0))  # live counters (progress/*) at most this often while a stage works


BOUND = Number(0, strict=True, also=(None,))  # a resource budget: a positive number, or null for none


@dataclass(kw_only=True)
class ConstraintsCfg:
    """Knobs of ``constraints``: resource budgets; an arch over one never enters a pocket (torch FLOP counter, batch 1)."""

    max_flops: Optional[float] = knob(None, BOUND)  # noqa: UP045 - FLOPs of one forward pass at batch 1
    max_params: Optional[float] = knob(None, BOUND)  # noqa: UP045 - parameter count
    max_latency_ms: Optional[float] = knob(None, BOUND)  # noqa: UP045 - latency budget in ms on `device`
    device: Optional[str] = None  # noqa: UP045 - e.g. pixel3, raspi4, eyeriss, 1080ti_1 (a table's latency_<device> column)


# group -> knob -> rule, for the groups a `_target_` builds (their knobs are the constructor's arguments):
# checked at composition, so no evaluation ever starts with such a value. A knob absent from the chosen option is not checked.
TARGET_RULES: dict[str, dict[str, Rule]] = {
    "executor": {"retries": Int(0), "workers": Int(1, also=("auto",)), "threads": Int(1, also=("auto",)),
                 "spawn_after_s": Number(0), "batch_size": Int(1), "num_cpus": Number(0), "num_gpus": Number(0)},
    "evaluator": {"epochs": Int(1), "batch_size": Int(1), "lr": Number(0, strict=True), "momentum": Number(0, 1),
                  "weight_decay": Number(0), "seed": Int(0), "n_batches": Int(1)},
    "dataset": {"size": Int(1), "resolution": Int(1), "channels": Int(1), "n_train": Int(1, also=(None,)),
                "n_val": Int(1), "n_test": Int(1, also=(None,)), "split_seed": Int(0),
                "val_fraction": Number(0, 1, strict=True), "test_fraction": Number(0, 1, strict=True)},
    "space": {"C": Int(1), "N": Int(1), "width_mult": Number(0, strict=True)},
}


@dataclass(kw_only=True)
class SearchCfg:
    """Knobs of ``python -m pipeline.search`` (conf/search.yaml); its groups space, dataset, evaluator, executor and
    tracking are the pipeline's."""

    shrunk: Optional[str] = None  # noqa: UP045 - a shrunk_space.json, runs:/<id>/shrunk_space.json; null: the full space
    searcher: str = "rea"  # one of pipeline.search.SEARCHER_NAMES (checked there, naming the closest)
    budget: int = knob(50, Int(1))  # new target evaluations the search may spend
    reuse_scores: str = "auto"  # auto: the shrink run's member scores are free when it scored this target; true; false
    seed: int = knob(0, Int(0))  # the searcher's randomness
    ground_truth: Optional[str] = "auto"  # noqa: UP045 - judges the pick (never searched on): auto, null or a table
    resume: Optional[str] = None  # noqa: UP045 - a search folder to continue
    progress: bool = True
    cache_dir: str = "~/.cache/nas-shrink"  # measured latency tables (constraints.device)
    constraints: ConstraintsCfg = field(default_factory=ConstraintsCfg)
    space: Any = None
    dataset: Any = None
    evaluator: Any = None
    executor: Any = None
    tracking: Any = None


@dataclass(kw_only=True)
class BenchCfg:
    """Knobs of ``python -m pipeline.bench`` (conf/bench.yaml): train every arch of a space, or a uniform sample,
    into a benchmark table; its groups space, dataset, evaluator and tracking are the pipeline's."""

    seed: int = knob(0, Int(0))  # draws the sample when n is set
    seeds: list[int] = knob([0])  # training seeds: one row per arch and seed (the benchmark evaluator averages them)
    n: Optional[int] = knob(None, Int(1, also=(None,)))  # noqa: UP045 - null: every arch of the space; else a sample of n
    workers: int = knob(1, Int(1))  # parallel training processes (each uses torch_threads CPU threads)
    torch_threads: Optional[int] = knob(None, Int(1, also=(None,)))  # noqa: UP045 - per worker; null: torch's default alone, else 1
    out: str = "benchmarks/${hydra:runtime.choices.space}_${hydra:runtime.choices.dataset}.csv"  # the table written
    progress: bool = True
    space: Any = None
    dataset: Any = None
    evaluator: Any = None
    tracking: Any = None
