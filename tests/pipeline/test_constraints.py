"""Resource budgets together: FLOPs, params and latency on a named device; never an infeasible member."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.artifacts import read_rows, write_rows
from pipeline.constraints import Constraints
from pipeline.convert_nb201 import ConversionError, read_latency
from pipeline.errors import ConfigError
from pipeline.run import run
from spaces.nb201 import NB201Space
from spaces.shrunk import ShrunkSpace
from tests.pipeline.test_run import toy_cfg

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def costly_table(toy_table: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy table with random FLOPs, params and latency on two devices (one arch unmeasured on pixel3)."""
    rng = np.random.default_rng(0)
    rows = read_rows(toy_table)
    for i, row in enumerate(rows):
        row.update(flops=float(rng.integers(1, 100)), params=float(rng.integers(1, 100)),
                   latency_pixel3=float(rng.uniform(1, 10)) if i else None, latency_raspi4=float(rng.uniform(5, 50)))
    out = tmp_path_factory.mktemp("costly") / "costly.csv"
    write_rows(out, rows)
    return out


def test_latency_and_counts_bound_together() -> None:
    budget = Constraints(max_flops=50, max_latency_ms=4.0, device="pixel3")
    assert budget.bounds() == {"flops": 50, "latency_pixel3": 4.0}
    assert budget.violation({"flops": 10, "latency_pixel3": 3.5}) is None
    assert budget.violation({"flops": 10, "latency_pixel3": 4.25}) == "latency_pixel3 4.25 > max_latency_ms 4.00"
    assert budget.violation({"flops": 60, "latency_pixel3": 1.0}) == "flops 60.00 > max_flops 50.00"
    assert budget.violation({"flops": 10}) == "latency_pixel3 unknown (nan): no budget admits it"


def test_the_latency_file_becomes_latency_columns(tmp_path: Path) -> None:
    path = tmp_path / "lat.csv"
    path.write_text(f"arch,pixel3,raspi4\n{ARCH},3.5,\n")
    assert read_latency(path, NB201Space()) == {ARCH: {"latency_pixel3": 3.5}}
    path.write_text("arch,pixel3\n|bogus~0|,1\n")
    with pytest.raises(ConversionError, match="line 2"):
        read_latency(path, NB201Space())


EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", 3))  # more by hand: HYPOTHESIS_MAX_EXAMPLES=50


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(flops=38, params=None, latency=7.0, device="pixel3")
@given(flops=st.one_of(st.none(), st.integers(30, 100)), params=st.one_of(st.none(), st.integers(30, 100)),
       latency=st.floats(3.0, 10.0), device=st.sampled_from(["pixel3", "raspi4"]))
def test_a_constrained_run_never_emits_an_infeasible_member(tmp_path_factory: pytest.TempPathFactory,
                                                            costly_table: Path, flops, params, latency: float,
                                                            device: str) -> None:
    tmp = tmp_path_factory.mktemp("run")
    if device == "raspi4":
        latency *= 5
    budget = Constraints(max_flops=flops, max_params=params, max_latency_ms=latency, device=device)
    overrides = [f"constraints.max_latency_ms={latency}", f"constraints.device={device}",
                 *([f"constraints.max_flops={flops}"] if flops else []),
                 *([f"constraints.max_params={params}"] if params else [])]
    rows = {r["arch"]: r for r in read_rows(costly_table)}
    feasible = [a for a, r in rows.items() if budget.violation({k: v if v is not None else math.nan
                                                                for k, v in r.items()}) is None]
    try:
        result = run(toy_cfg(tmp, costly_table, *overrides), tmp / "run")
    except ConfigError as err:  # nothing feasible (refused up front), or no pocket among what could be scored
        # A refusal for want of a pocket is right only when the run scored every feasible arch (no pocket exists
        # among them), or too few are feasible to fill the sample; never after giving up on unscored ones.
        exhausted = f"({len(feasible)} archs scored;" in str(err)
        assert (not feasible and "meets the constraints" in str(err)) or (
            "grew a pocket" in str(err) and (exhausted or len(feasible) < 8)), str(err)
        return
    shrunk = ShrunkSpace.load(result.shrunk_space)
    assert shrunk.members() and set(shrunk.members()) <= set(feasible)
    for pocket in shrunk.pockets:  # each pocket carries its cost ranges, inside the budget
        assert set(pocket.costs) == set(budget.bounds())
        assert all(lo <= hi <= budget.bounds()[k] for k, (lo, hi) in pocket.costs.items())


@pytest.mark.parametrize(("overrides", "message"), [
    (("constraints.device=pixel3",), "constraints.max_latency_ms and constraints.device go together"),
    (("constraints.max_latency_ms=5", "constraints.device=pixel9"), r"needs column 'latency_pixel9'.*pixel3, raspi4"),
    (("constraints.max_latency_ms=0.5", "constraints.device=pixel3"), "no arch of .* meets the constraints"),
    (("constraints.max_latency_ms=-1", "constraints.device=pixel3"), "max_latency_ms=-1.0 must be a finite number > 0 or null"),
])
def test_impossible_budgets_fail_before_any_evaluation(tmp_path: Path, costly_table: Path, overrides: tuple,
                                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run(toy_cfg(tmp_path, costly_table, *overrides), tmp_path / "run")
    assert not list((tmp_path / "run").glob("round_*"))


def test_latency_needs_a_table(tmp_path: Path) -> None:
    from tests.conftest import compose_cfg

    cfg = compose_cfg("space=toy", "constraints.max_latency_ms=5", "constraints.device=pixel3", "supernet=none",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ConfigError, match="use evaluator=benchmark with a table that has latency_<device> columns"):
        run(cfg, tmp_path / "run")


def test_measured_latency_is_for_this_machine_and_a_space_with_a_latency_hook(tmp_path: Path) -> None:
    from tests.conftest import compose_cfg

    for overrides, message in ((("space=nb201", "constraints.device=cpu"), "for a space with a latency hook"),
                               (("space=mobilenet", "constraints.device=pixel3"), "measured on this machine"),
                               (("space=mobilenet", "constraints.device=cuda"), "no CUDA device here")):
        folder = tmp_path / overrides[1].split("=")[1]
        if "cuda" in overrides[1] and __import__("torch").cuda.is_available():
            continue
        cfg = compose_cfg(*overrides, "evaluator=params", "constraints.max_latency_ms=5", "supernet=none",
                          f"cache_dir={tmp_path}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
        with pytest.raises(ConfigError, match=message):
            run(cfg, folder)


@pytest.mark.slow
def test_mobilenet_under_a_cpu_latency_budget_measures_once_and_keeps_every_member_under_it(tmp_path: Path) -> None:
    from spaces.mobilenet.latency import LatencyTable
    from tests.conftest import compose_cfg

    cfg = compose_cfg("space=mobilenet", "evaluator=params", "constraints.max_latency_ms=6", "constraints.device=cpu",
                      "supernet=none", "shrink.budget=30", "shrink.sample.n_samples=16", "progress=false",
                      f"cache_dir={tmp_path}",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    shrunk = ShrunkSpace.load(run(cfg, tmp_path / "run").shrunk_space)
    (table_path,) = (tmp_path / "latency").glob("mobilenet-*-cpu.csv")
    table = LatencyTable.load(table_path)
    assert all(shrunk.base.latency(shrunk.base.from_str(a), (1, 32, 32), table) <= 6 for a in shrunk.members())
    stamp = table_path.stat().st_mtime_ns
    run(cfg, tmp_path / "run2")
    assert table_path.stat().st_mtime_ns == stamp  # measured once, then read from the cache
