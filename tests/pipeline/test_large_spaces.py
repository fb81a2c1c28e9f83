"""Shrinkage runs on the large spaces (MobileNetV3 ~2e19 archs, NAS-Bench-101) with a zero-cost proxy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.run import run
from spaces.mobilenet import MobileNetSpace
from spaces.shrunk import ShrunkSpace
from tests.conftest import compose_cfg

SMALL = ("evaluator=zico", "shrink.budget=36", "shrink.sample.n_samples=20", "progress=false", "supernet=none")


@pytest.mark.slow  # ~30 s; the default suite checks FLOPs budgets on NB-Macro (tests/spaces/test_nb_macro.py)
def test_mobilenet_under_a_flops_budget_keeps_every_member_feasible(tmp_path: Path) -> None:
    budget = 6_800_000  # FLOPs at 32x32 digits input, half width: roughly the lower third of the space
    cfg = compose_cfg("space=mobilenet", *SMALL, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                      f"constraints.max_flops={budget}")
    result = run(cfg, tmp_path / "run")
    shrunk = ShrunkSpace.load(result.shrunk_space)
    space = MobileNetSpace(0.5)
    assert shrunk.size() > 0 and shrunk.base.config() == space.config()
    assert all(space.costs(space.from_str(a), (1, 32, 32), 10)[1] <= budget for a in shrunk.arch_strs())


def test_mobilenet_ball_pockets_give_an_exact_sampleable_subspace(tmp_path: Path) -> None:
    cfg = compose_cfg("space=mobilenet", *SMALL, "evaluator=params", "shrink.pockets.region=ball",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    shrunk = ShrunkSpace.load(run(cfg, tmp_path / "run").shrunk_space)
    # Each radius-2 ball around a seed holds thousands of archs: far more than were evaluated.
    assert shrunk.size() > 1000 * len(shrunk.pockets) > 0
    assert set(shrunk.members()) <= set(shrunk.arch_strs())
    draw = shrunk.sample(np.random.default_rng(0))
    assert draw in shrunk and min(shrunk.base.distance(draw, shrunk.base.from_str(p.seed))
                                  for p in shrunk.pockets) <= 2


def test_nb101_run_completes(tmp_path: Path) -> None:
    cfg = compose_cfg("space=nb101", *SMALL, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    shrunk = ShrunkSpace.load(run(cfg, tmp_path / "run").shrunk_space)
    assert shrunk.size() > 0 and all(a == shrunk.base.to_str(shrunk.base.canonical(shrunk.base.from_str(a)))
                                     for a in shrunk.arch_strs())


@pytest.mark.parametrize("overrides, message", [
    (("space=nb101", "shrink.pockets.region=ball"), "needs a categorical space"),
    (("space=mobilenet", "shrink.pockets.region=ball", "constraints.max_flops=3e6"), "over the budget"),
    (("space=mobilenet", "shrink.pockets.region=disc"), "not one of surrogate, members, ball"),
])
def test_impossible_pocket_regions_fail_before_evaluating(tmp_path: Path, overrides: tuple, message: str) -> None:
    cfg = compose_cfg(*overrides, *SMALL, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "round_000" / "evaluate").exists()
