"""Nothing silently wrong: strict files, checked tables and shrunk spaces, MLflow runs that a resume continues."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.__main__ import write_failure
from pipeline.artifacts import read_rows, write_json, write_rows
from pipeline.build import ground_truth
from pipeline.cli import check
from pipeline.constraints import Constraints
from pipeline.datasets import BenchmarkOnly as Dataset
from pipeline.errors import ConfigError
from pipeline.evaluators.base import EvaluatorError
from pipeline.evaluators.benchmark import BenchmarkEvaluator, read_table
from pipeline.run import run
from spaces.exchange import FILENAMES, export
from spaces.files import atomic_write, strict_loads
from spaces.nb101 import NB101Space
from spaces.shrunk import Pocket, ShrunkSpace, ShrunkSpaceError
from spaces.toy import ToySpace
from tests.conftest import HANG_GUARD_S, ROOT
from tests.pipeline.test_run import toy_cfg

TOY = ToySpace()
A, B = "width=32;activation=relu;depth=1", "width=128;activation=tanh;depth=2"


def toy_dict() -> dict:
    """Return a valid two-member shrunk space over the toy space, as its file holds it."""
    return ShrunkSpace(TOY, [Pocket(0, A, 90.0, 1, ((A, 90.0), (B, None)))], "val_acc").to_dict()


def write_table(path: Path, rows: list[str], header: str = "arch,dataset,val_acc,test_acc") -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


# --- strict, atomic files ---------------------------------------------------------------------------

def test_json_is_written_strict_with_null_for_nan(tmp_path: Path) -> None:
    write_json(tmp_path / "m.json", {"regret": math.nan, "rows": [1.0, math.inf], "ok": 2.5})
    assert strict_loads((tmp_path / "m.json").read_text()) == {"regret": None, "rows": [1.0, None], "ok": 2.5}


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    write_rows(target, [{"arch": A, "score": 1.0}])

    def full_disk(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, full_disk)
    assert read_rows(target) == [{"arch": A, "score": 1.0}] and sorted(os.listdir(tmp_path)) == ["scores.csv"]


def test_strict_reader_refuses_nan_and_deep_nesting() -> None:
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        strict_loads('{"score": NaN}')
    with pytest.raises(ValueError, match="nested too deeply"):
        strict_loads("[" * 100_000 + "]" * 100_000)


# --- shrunk-space files are validated whole -----------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["base_space"].update(size=99), "'base_space/size' is 99 but toy has 27 archs"),
    (lambda d: d["pockets"][0].update(seed="bogus"), "'pockets/0/seed'"),
    (lambda d: d["pockets"][0]["members"][1].update(arch=B + "  "), "'pockets/0/members/1/arch'"),
    (lambda d: d["pockets"].append({**d["pockets"][0]}), "pocket id 0 appears twice"),
    (lambda d: d["pockets"][0]["members"][0].update(score=math.inf), "score inf is not finite"),
])
def test_a_shrunk_space_file_with_a_false_field_is_refused_by_name(tmp_path: Path, change, message: str) -> None:
    data = toy_dict()
    change(data)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))  # json.dumps writes inf as bare Infinity: refused as not valid JSON
    with pytest.raises(ShrunkSpaceError, match="not valid JSON" if "inf" in message else message):
        ShrunkSpace.load(path)
    if "inf" in message:
        with pytest.raises(ValueError, match=message):
            ShrunkSpace.from_dict(data)


def test_export_writes_nothing_when_a_format_cannot_be_built(tmp_path: Path) -> None:
    space = NB101Space()
    arch = space.to_str(space.sample(__import__("numpy").random.default_rng(0)))
    shrunk = ShrunkSpace(space, [Pocket(0, arch, 90.0, 0, ((arch, 90.0),))])
    with pytest.raises(ShrunkSpaceError, match="needs a space with per-decision options"):
        export(shrunk, tmp_path / "out", ("json", "list", "naslib"))
    assert not (tmp_path / "out").exists()
    written = export(shrunk, tmp_path / "out", ("json", "list"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILENAMES[f] for f in written)


# --- benchmark tables: conflicts, NaN ground truth, unknown costs --------------------------------------

def test_conflicting_duplicate_rows_are_an_error_unless_seeds_explain_them(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv", [f"{A},digits,90,89", f"{A},digits,10,11"])
    with pytest.raises(EvaluatorError, match=r"lines 2, 3 give arch .* different test_acc; keep one row"):
        read_table(table, TOY, "digits")
    same = write_table(tmp_path / "same.csv", [f"{A},digits,90,89", f"{A},digits,90,89"])
    assert read_table(same, TOY, "digits")[A]["val_acc"] == 90
    seeded = write_table(tmp_path / "seeded.csv", [f"{A},digits,0,90,89", f"{A},digits,1,10,11"],
                         "arch,dataset,seed,val_acc,test_acc")
    assert read_table(seeded, TOY, "digits")[A]["val_acc"] == 50
    reused = write_table(tmp_path / "reused.csv", [f"{A},digits,0,90,89", f"{A},digits,0,10,11"],
                         "arch,dataset,seed,val_acc,test_acc")
    with pytest.raises(EvaluatorError, match="different test_acc"):
        read_table(reused, TOY, "digits")


def test_an_all_nan_search_metric_is_refused_before_any_evaluation(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv", [f"{A},digits,nan,89", f"{B},digits,nan,80"])
    with pytest.raises(EvaluatorError, match="has no finite val_acc"):
        BenchmarkEvaluator(TOY, Dataset("digits"), str(table))


def test_nan_ground_truth_is_warned_about_and_left_out(tmp_path: Path) -> None:
    table = write_table(tmp_path / "t.csv", [f"{A},digits,90,nan", f"{B},digits,80,79"])
    evaluator = BenchmarkEvaluator(TOY, Dataset("digits"), str(table))
    with pytest.warns(RuntimeWarning, match="1 of 2 archs have a NaN or infinite test_acc"):
        truth = ground_truth("auto", TOY, evaluator)
    assert truth == {B: 79.0}


def test_unknown_costs_never_fit_a_budget() -> None:
    budget = Constraints(max_flops=1e6)
    assert budget.violation({"flops": math.nan, "params": 1.0}) == "flops unknown (nan): no budget admits it"
    assert budget.violation({"flops": 5e5, "params": math.nan}) is None  # params are not bounded


def test_a_run_on_a_table_with_nan_cells_emits_only_judged_feasible_members(tmp_path: Path, toy_table: Path) -> None:
    rows = read_rows(toy_table)
    for i, row in enumerate(rows):
        row["flops"] = math.nan if i % 3 == 0 else 1000.0 * i
        row["test_acc"] = math.nan if i % 5 == 0 else row["test_acc"]
    table = tmp_path / "holes.csv"
    write_rows(table, rows)
    budget = sorted(r["flops"] for r in rows if not math.isnan(r["flops"]))[12]
    with pytest.warns(RuntimeWarning, match="no finite flops: they count as over the budget"):
        result = run(toy_cfg(tmp_path, table, f"constraints.max_flops={budget}"), tmp_path / "run")
    flops = {r["arch"]: r["flops"] for r in rows}
    members = ShrunkSpace.load(result.shrunk_space).members()
    assert members and all(flops[m] <= budget for m in members)
    for path in (tmp_path / "run").rglob("*.json*"):
        for line in path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]:
            strict_loads(line)  # every JSON the run wrote is strict
    assert all(math.isfinite(v) for r in result.rounds for k, v in r.items() if k in ("regret", "gt_mean"))


# --- MLflow: a resume continues the same run; a killed run is marked ---------------------------------------

def test_resume_continues_the_same_mlflow_run_and_marks_the_dead_ones_killed(tmp_path: Path, toy_table: Path) -> None:
    cfg = toy_cfg(tmp_path, toy_table, "tracking.stage_runs=true")
    first = run(cfg, tmp_path / "run")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_run(first.run_id).info.experiment_id
    before = client.search_runs([experiment], max_results=1000)
    # What a SIGKILL during emit leaves: the parent and an emit run RUNNING, no emit folder.
    client.update_run(first.run_id, status="RUNNING")
    dead = client.create_run(experiment, run_name="emit", tags={"mlflow.parentRunId": first.run_id}).info.run_id
    client.delete_run(next(r.info.run_id for r in before if r.info.run_name == "emit"))
    __import__("shutil").rmtree(tmp_path / "run" / "emit")
    again = run(cfg, tmp_path / "run")
    assert again.run_id == first.run_id and client.get_run(first.run_id).info.status == "FINISHED"
    assert client.get_run(dead).info.status == "KILLED"
    after = client.search_runs([experiment], max_results=1000)
    new = {r.info.run_name for r in after} - {r.info.run_name for r in before} - {"emit"}
    assert len(after) == len(before) + 1 and not new  # only the re-made emit run: finished rounds are not logged twice
    steps = list(range(len(first.rounds)))
    assert [m.step for m in client.get_metric_history(first.run_id, "round/evaluated_total")] == steps
    assert [m.step for m in client.get_metric_history(first.run_id, "round/chosen")] == steps  # emit's rerun: no doubles


@pytest.mark.slow
def test_sigterm_stops_the_run_cleanly_and_marks_it_killed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "pipeline", "space=toy", "supernet=none", "shrink.budget=200", "progress=false",
           f"hydra.run.dir={run_dir}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + HANG_GUARD_S
    while not (run_dir / "mlflow_run.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130 and "resume with:" in err and "Traceback" not in err
    run_id = json.loads((run_dir / "mlflow_run.json").read_text())["run_id"]
    assert MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(run_id).info.status == "KILLED"


# --- writes the machine refuses: one line, before any work where the config decides ------------------------

def test_a_full_disk_is_one_line_naming_the_file() -> None:
    err = OSError(errno.ENOSPC, "No space left on device", "run/round_001/evaluate/journal.jsonl")
    assert write_failure(err) == ("cannot write run/round_001/evaluate/journal.jsonl: No space left on device; "
                                  "free some space, then run the same command again (finished work is kept)")
    assert write_failure(ValueError("x")) is None


def test_a_read_only_output_folder_is_refused_before_hydra_makes_it(tmp_path: Path, monkeypatch) -> None:
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(ConfigError, match=r"output folder .* cannot be written .* hydra.run.dir="):
        check(["space=toy", f"hydra.run.dir={tmp_path}/run"])
    with pytest.raises(ConfigError, match=r"MLflow store .* cannot be written .* tracking.uri="):
        check(["space=toy", f"tracking.uri=sqlite:///{tmp_path}/m.db"])


def test_a_rule_of_another_method_is_refused() -> None:
    from omegaconf import OmegaConf

    from pipeline.build import stage_configs
    from tests.conftest import compose_cfg

    shrink = OmegaConf.to_container(compose_cfg("shrink=topk", "shrink.select.rule=regnet").shrink)
    with pytest.raises(ConfigError, match=r"shrink.select.rule='regnet' is not the rule of method topk \(top\); run that "
                                          r"method with shrink=regnet"):
        stage_configs(shrink)


def test_a_dataset_that_cannot_load_is_refused_before_any_evaluation(tmp_path: Path, request) -> None:
    import importlib.util

    from pipeline.datasets import DatasetUnavailableError
    from tests.conftest import compose_cfg

    cases = [(("dataset=ImageNet16-120",), "has no training data here")]
    if importlib.util.find_spec("torchvision") is None:  # CIFAR needs it for training or for the supernet
        table = request.getfixturevalue("nb201_table")  # NB201 has a supernet; skips without ../shared
        cases.append((("dataset=cifar10", "evaluator=benchmark", f"evaluator.path={table}", "supernet.enabled=true"),
                      "needs a torchvision built for your torch"))
    for k, (overrides, message) in enumerate(cases):
        cfg = compose_cfg(*overrides, "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
        with pytest.raises(DatasetUnavailableError, match=message):
            run(cfg, tmp_path / f"run{k}")
        assert not list((tmp_path / f"run{k}").glob("round_*"))
