"""Searchers that are both the baselines of the shrinkage harness and the consumers of shrunk spaces.

Each runs on a domain (``FullDomain`` for the whole space, ``ShrunkDomain`` for an emitted
space) through an ``Oracle`` that counts evaluations the way the pipeline does.
"""

from __future__ import annotations

from pipeline.searchers.base import (
    BoxDomain,
    BudgetSpent,
    FeasibleDomain,
    FullDomain,
    MemberDomain,
    Oracle,
    ShrunkDomain,
    evaluator_oracle,
    table_score,
)
from pipeline.searchers.epnas import epnas
from pipeline.searchers.evolution import rea
from pipeline.searchers.local import local_search
from pipeline.searchers.sampling import random_search, tpe

SEARCHERS = {"rea": rea, "local_search": local_search, "random": random_search, "tpe": tpe, "epnas": epnas}

__all__ = ["SEARCHERS", "BoxDomain", "BudgetSpent", "FeasibleDomain", "FullDomain", "MemberDomain", "Oracle",
           "ShrunkDomain", "epnas", "evaluator_oracle", "local_search", "random_search", "rea", "table_score", "tpe"]
