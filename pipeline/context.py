"""What a stage receives: the built space and evaluator, its rng, its folder, file access."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.artifacts import ARTIFACTS
from pipeline.constraints import Constraints
from pipeline.errors import MissingArtifactError
from pipeline.evaluators.base import Evaluator
from pipeline.executors import Executor, LocalExecutor
from spaces.base import SearchSpace


def round_dir(run_dir: Path, round_index: int) -> Path:
    """Return the folder of one round."""
    return run_dir / f"round_{round_index:03d}"


@dataclass
class StageContext:
    """Everything a stage may touch; the runner builds one per stage and round."""

    space: SearchSpace
    evaluator: Evaluator
    rng: np.random.Generator
    run_dir: Path
    round: int
    stage: str
    folder: Path  # this stage's own folder; everything it makes is written here
    budget: int  # total evaluations allowed in the whole run
    truth: dict[str, float] | None = None  # arch -> ground-truth accuracy, for metrics only
    executor: Executor = field(default_factory=LocalExecutor)  # where evaluations run
    constraints: Constraints = field(default_factory=Constraints)  # resource budget of every member
    dataset: Any = None  # the run's dataset (supernet training reads its splits)
    latent: Any = None  # pipeline.latent.Latent: the learned locality / surrogate features, when configured
    report: Callable[[dict[str, float]], None] | None = None  # live counters (the runner sends them to MLflow)

    def progress(self, counters: dict[str, float]) -> None:
        """Report live counters of work in progress (throttled by the receiver); no-op without one."""
        if self.report is not None:
            self.report(counters)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, name: str, obj: Any) -> Path:
        """Write artifact ``name`` into this stage's folder."""
        path = self.folder / ARTIFACTS[name].filename
        ARTIFACTS[name].write(path, obj)
        return path

    def load(self, name: str, round_index: int | None = None) -> Any:
        """Read artifact ``name`` made in ``round_index`` (default: this round)."""
        index = self.round if round_index is None else round_index
        filename = ARTIFACTS[name].filename
        found = sorted(round_dir(self.run_dir, index).glob(f"*/{filename}"))
        if not found:
            raise MissingArtifactError(
                f"no '{name}' ({filename}) in round {index} of {self.run_dir}; run its stage first"
            )
        return ARTIFACTS[name].read(found[0])

    def load_here(self, name: str) -> Any:
        """Read artifact ``name`` from this stage's own folder."""
        return ARTIFACTS[name].read(self.folder / ARTIFACTS[name].filename)

    def final_path(self, name: str) -> Path:
        """Return the file of artifact ``name`` made by a final stage (emit, supernet, search) of this run."""
        filename = ARTIFACTS[name].filename
        found = sorted(p for p in self.run_dir.glob(f"*/{filename}")
                       if not p.parent.name.startswith("round_") and ".stale-" not in p.parent.name)
        if not found:
            raise MissingArtifactError(f"no '{name}' ({filename}) among the final stages of {self.run_dir}; "
                                       "run its stage first")
        return found[0]

    def load_all(self, name: str) -> list[Any]:
        """Read artifact ``name`` from every round up to this one, oldest first."""
        return [self.load(name, r) for r in range(self.round + 1) if self.has(name, r)]

    def has(self, name: str, round_index: int) -> bool:
        """Tell whether round ``round_index`` holds artifact ``name``."""
        return any(round_dir(self.run_dir, round_index).glob(f"*/{ARTIFACTS[name].filename}"))

    def violation(self, arch: str) -> str | None:
        """Return why ``arch`` breaks the resource budget, or None (always None without one)."""
        return self.constraints.arch_violation(arch, self.space, self.evaluator)

    def uses_latent(self) -> bool:
        """Tell whether structural closeness is the learned embedding's (shrink.latent.locality=latent)."""
        return self.latent is not None and self.latent.locality == "latent"

    def surrogate_features(self) -> dict[str, Any]:
        """Return the Surrogate keyword arguments for the configured features (shrink.latent.features)."""
        if self.latent is None or self.latent.features() is None:
            return {}
        return {"features": self.latent.features(), "mode": self.latent.cfg.features}

    def feasible(self, arch: str) -> bool:
        """Tell whether ``arch`` fits the resource budget."""
        return self.violation(arch) is None

    def evaluated(self) -> dict[str, dict[str, Any]]:
        """Return every arch scored so far (all rounds), keyed by arch string."""
        rows: dict[str, dict[str, Any]] = {}
        for table in self.load_all("scores"):
            rows.update({row["arch"]: row for row in table})
        return rows
