"""NAS-Bench-Macro golden facts, its converter, and a shrinkage run against its ground truth."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pipeline.convert_nb_macro import main as convert_main
from pipeline.evaluators.benchmark import read_table
from spaces import InvalidArchError
from spaces.costs import count_flops, count_params
from spaces.nb_macro import NBMacroSpace
from tests.conftest import compose_cfg, shared_file

S = NBMacroSpace()


def test_size_strings_and_neighbours() -> None:
    assert S.size() == 6_561
    arch = S.from_str("02012100")
    assert arch[:3] == ("id", "ir_5x5_t6", "id") and S.to_str(arch) == "02012100"
    assert len(S.neighbors(arch)) == 16
    with pytest.raises(InvalidArchError, match="layer 3: '7' is not one of 0"):
        S.from_str("02072100")
    with pytest.raises(InvalidArchError, match="must be 8 digits"):
        S.from_str("0201")


@pytest.mark.parametrize("key, params, macs", [
    # Published NAS-Bench-Macro parameter and multiply-add counts (CIFAR-10).
    ("00000000", 387_882, 7_713_280), ("22222222", 2_932_586, 105_660_928), ("02012100", 890_666, 47_327_744),
])
def test_network_matches_the_benchmark(key: str, params: int, macs: int) -> None:
    model = S.build_model(S.from_str(key), (3, 32, 32), 10)
    assert count_params(model) == params and count_flops(model, (3, 32, 32)) == 2 * macs


def test_identity_layers_inside_a_stage_only_reorder() -> None:
    assert S.equivalence_key(S.from_str("00120000")) == S.equivalence_key(S.from_str("00102000"))
    assert S.equivalence_key(S.from_str("10000000")) != S.equivalence_key(S.from_str("01000000"))
    assert len({S.equivalence_key(a) for a in itertools.product(*S.options)}) == 3_969


@pytest.fixture(scope="module")
def macro_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("macro") / "nb_macro.csv"
    assert convert_main([str(shared_file("nas-bench-macro_cifar10.json")), "--out", str(out)]) == 0
    return out


def test_converter_splits_runs_into_val_and_test(macro_table: Path) -> None:
    table = read_table(macro_table, S, "cifar10")
    assert len(table) == 6_561
    row = table["22222222"]
    assert row["val_acc"] == pytest.approx((93.05999755859375 + 92.91999816894531) / 2)
    assert row["test_acc"] == pytest.approx(92.87999725341797) and row["flops"] == 2 * 105_660_928
    assert max(r["mean_acc"] for r in table.values()) == pytest.approx(93.13, abs=0.005)


def test_converter_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"0201": {"test_acc": [1, 2, 3]}}')
    assert convert_main([str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    assert "entry '0201': nb_macro: '0201' must be 8 digits" in capsys.readouterr().err


@pytest.mark.slow
def test_shrinkage_on_nb_macro_beats_the_full_space(tmp_path: Path, macro_table: Path) -> None:
    from pipeline.run import run
    from spaces.shrunk import ShrunkSpace

    cfg = compose_cfg("space=nb_macro", "evaluator=benchmark", f"evaluator.path={macro_table}", "dataset=cifar10",
                      "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    shrunk = ShrunkSpace.load(run(cfg, tmp_path / "run").shrunk_space)
    truth = {a: r["test_acc"] for a, r in read_table(macro_table, S, "cifar10").items()}
    assert np.mean([truth[a] for a in shrunk.arch_strs()]) > np.mean(list(truth.values()))


@pytest.mark.parametrize("method", ["lissnas", "op_pruning"])
def test_flops_budget_keeps_every_member_and_sample_under_it(tmp_path: Path, macro_table: Path, method: str) -> None:
    from mlflow.tracking import MlflowClient

    from pipeline.artifacts import read_rows
    from pipeline.run import run
    from spaces.shrunk import ShrunkSpace

    budget = 100_000_000
    cfg = compose_cfg("space=nb_macro", "evaluator=benchmark", f"evaluator.path={macro_table}", "dataset=cifar10",
                      f"shrink={method}", "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                      f"constraints.max_flops={budget}")
    result = run(cfg, tmp_path / "run")
    table = read_table(macro_table, S, "cifar10")
    members = ShrunkSpace.load(result.shrunk_space).arch_strs()
    assert members and all(table[a]["flops"] <= budget for a in members)
    sampled = read_rows(tmp_path / "run" / "round_000" / "sample" / "proposals.csv")
    assert all(table[r["arch"]]["flops"] <= budget for r in sampled)
    # Regret is measured against the best arch the budget allows.
    feasible_best = max(r["test_acc"] for r in table.values() if r["flops"] <= budget)
    metrics = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id).data.metrics
    assert metrics["result/best_test_acc"] + metrics["result/regret"] == pytest.approx(feasible_best, abs=1e-3)


@pytest.mark.parametrize("override, message", [
    ("constraints.max_flops=-5", "constraints.max_flops=-5.0 must be a finite number > 0 or null"),
    ("+constraints.max_latency=3", "constraints.max_latency is not a constraint"),
])
def test_bad_constraints_are_named(tmp_path: Path, override: str, message: str) -> None:
    from pipeline.errors import ConfigError
    from pipeline.run import run

    cfg = compose_cfg("space=toy", "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", override)
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "run")
