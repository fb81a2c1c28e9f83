"""Random search and Optuna's TPE, through the domain contract."""

from __future__ import annotations

import numpy as np

from pipeline.searchers.base import BudgetSpent, FullDomain, Oracle


def random_search(domain, oracle: Oracle, rng: np.random.Generator) -> Oracle:
    """Evaluate uniform samples of the domain until the budget is spent."""
    idle = 0
    try:
        while idle < 1000:
            before = oracle.spent
            oracle(domain.sample(rng))
            idle = 0 if oracle.spent > before else idle + 1
    except BudgetSpent:
        pass
    return oracle


def tpe(domain, oracle: Oracle, rng: np.random.Generator) -> Oracle:
    """Run Optuna's TPE: one categorical per decision on a full categorical space, one over member ids on a shrunk one.

    Archs outside the domain (over a resource budget) are told the worst score seen and cost
    nothing; archs already scored are told their score for free.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = domain.space
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=int(rng.integers(2**31))))
    members = None if isinstance(domain, FullDomain) else sorted(domain.shrunk.arch_strs())
    idle = 0
    try:
        while idle < 1000:
            trial = study.ask()
            arch = _suggest(trial, space, members)
            before = oracle.spent
            value = oracle(arch) if arch in domain else min(oracle.cache.values(), default=0.0)
            study.tell(trial, value)
            idle = 0 if oracle.spent > before else idle + 1
    except BudgetSpent:
        pass
    return oracle


def _suggest(trial, space, members: list[str] | None) -> str:
    """Suggest one categorical per decision, or one member id when ``members`` is given."""
    if members is not None:
        return members[trial.suggest_categorical("member", list(range(len(members))))]
    return space.to_str(tuple(trial.suggest_categorical(d, list(o)) for d, o in zip(space.decisions, space.options, strict=True)))
