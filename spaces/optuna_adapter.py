"""Optuna adapter: search a shrunk space (one categorical over arch ids) or a full categorical space.

Example over a benchmark table (NB201)::

    shrunk = ShrunkSpace.load("shrunk_space.json")
    table = read_table(Path("benchmarks/nb201.csv"), shrunk.base, "cifar10")
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    enqueue_seeds(study, shrunk)
    study.optimize(table_objective(table, lambda t: suggest_arch(t, shrunk), shrunk.base), n_trials=50)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from spaces.base import Arch, CategoricalSpace, SearchSpace
from spaces.exchange import _param
from spaces.shrunk import ShrunkSpace

PARAM = "arch_id"


def suggest_arch(trial: Any, shrunk: ShrunkSpace, param: str = PARAM) -> Arch:
    """Suggest one member of the shrunk space by its id."""
    index = trial.suggest_categorical(param, list(range(shrunk.size())))
    return shrunk.base.from_str(shrunk.arch_strs()[index])


def enqueue_seeds(study: Any, shrunk: ShrunkSpace, param: str = PARAM) -> int:
    """Enqueue every pocket seed as a first trial; return how many were enqueued."""
    ids = {a: i for i, a in enumerate(shrunk.arch_strs())}
    seeds = [ids[p.seed] for p in shrunk.pockets if p.seed in ids]
    for index in seeds:
        study.enqueue_trial({param: index})
    return len(seeds)


def suggest_full(trial: Any, space: CategoricalSpace) -> Arch:
    """Suggest an arch of the full space, one categorical per decision (the usual encoding)."""
    return tuple(trial.suggest_categorical(_param(d), list(opts)) for d, opts in zip(space.decisions, space.options, strict=True))


def table_objective(table: Mapping[str, Mapping[str, float]], suggest: Callable[[Any], Arch], space: SearchSpace,
                    metric: str = "val_acc") -> Callable[[Any], float]:
    """Return an objective that looks the suggested arch up; test accuracy is kept as a user attribute."""

    def objective(trial: Any) -> float:
        key = space.to_str(suggest(trial))
        row = table[key]
        trial.set_user_attr("arch", key)
        trial.set_user_attr("test_acc", row.get("test_acc"))
        return float(row[metric])

    return objective
