"""`python -m pipeline` as a user runs it: output, Hydra overrides, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD_S, ROOT

QUICK = ["evaluator.epochs=1", "shrink.sample.n_samples=8", "shrink.budget=14", "shrink.explore.seeds_per_round=2",
         "shrink.explore.neighbors_per_seed=3", "shrink.pockets.good_quantile=0.5", "progress=false"]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0 and "Traceback" not in out.stderr
    return out.stderr.strip().splitlines()[-1]


def test_unknown_space_lists_the_choices(tmp_path: Path) -> None:
    out = cli(tmp_path, "space=nb999")
    assert out.returncode != 0 and "nb201" in out.stderr and "toy" in out.stderr and "Traceback" not in out.stderr


def test_missing_benchmark_file_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(cli(tmp_path, "evaluator=benchmark", "evaluator.path=/no/such/table.csv"))
    assert line.startswith("error: benchmark table '/no/such/table.csv' not found; build it with "
                           "`python -m pipeline.bench space=nb201 dataset=digits out=/no/such/table.csv`")
    assert "python -m pipeline.convert_nb201" in line


def test_bad_shrink_value_is_one_line(tmp_path: Path) -> None:
    assert one_line_error(cli(tmp_path, "space=toy", "shrink.budget=0")) == "error: shrink.budget=0 must be an integer >= 1"


def test_resume_from_a_non_run_folder_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(cli(tmp_path, "space=toy", f"resume={tmp_path}"))
    assert "is not a run directory (no run.json)" in line


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci_line = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in ln][0]
    assert f"```bash\n{ci_line}\n```" in readme


@pytest.mark.slow
def test_multirun_jobs_sit_under_one_sweep_run(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    out = cli(tmp_path, "-m", "space=toy", "seed=0,1", *QUICK)
    assert out.returncode == 0, out.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("nas-shrink")
    sweeps = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    jobs = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{sweeps[0].info.run_id}'")
    assert sorted(j.data.tags["seed"] for j in jobs) == ["0", "1"]


@pytest.mark.slow
def test_resume_by_mlflow_run_id(tmp_path: Path) -> None:
    first = cli(tmp_path, "space=toy", *QUICK)
    run_id = first.stdout.split("MLflow run id: ")[1].split()[0]
    shrunk = first.stdout.split("Shrunk space: ")[1].split()[0]
    again = cli(tmp_path, "space=toy", *QUICK, f"resume={run_id}")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split("Shrunk space: ")[1].split()[0] == shrunk
    assert one_line_error(cli(tmp_path, "space=toy", *QUICK, "resume=0123abcd")).startswith("error: resume='0123abcd' is neither")


@pytest.mark.slow
def test_eight_parallel_jobs_lose_no_run_and_no_metric(tmp_path: Path) -> None:
    import csv

    from mlflow.tracking import MlflowClient

    out = cli(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "space=toy",
              "seed=0,1,2,3,4,5,6,7", *QUICK)
    assert out.returncode == 0, out.stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name("nas-shrink")
    sweep = client.search_runs([exp.experiment_id], "tags.sweep = 'true'")[0]
    jobs = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{sweep.info.run_id}'")
    assert len(jobs) == 8 and all(j.info.status == "FINISHED" for j in jobs)
    # Every job sits in the one sweep folder, named after the launching process (not each worker's pid),
    # so two sweeps started in the same second never share a folder.
    assert len({Path(j.data.tags["run_dir"]).parent for j in jobs}) == 1
    assert Path(jobs[0].data.tags["run_dir"]).parent.name.split("-")[-1].isdigit()
    for job in jobs:
        with (Path(job.data.tags["run_dir"]) / "rounds.csv").open() as handle:
            rounds = list(csv.DictReader(handle))
        history = client.get_metric_history(job.info.run_id, "round/evaluated_total")
        assert [m.value for m in history] == [float(r["evaluated_total"]) for r in rounds]


def test_override_without_a_key_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", "=0"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr.strip() == "error: override '=0' has no key; write KEY=VALUE, e.g. seed=3"


@pytest.mark.parametrize(("args", "expected"), [
    (["shrink.budgt=5"], "error: unknown key 'shrink.budgt'; did you mean shrink.budget?"),
    (["evaluatr=zico"], "error: unknown key 'evaluatr'; did you mean evaluator?"),
    (["+space=nb2011"], "error: unknown space option 'nb2011'; did you mean nb201?"),
    (["shrink=lisnas"], "error: unknown shrink option 'lisnas'; did you mean lissnas?"),
    (["seed=abc"], "error: seed='abc' is not a non-negative integer"),
    (["-m", "seed=0,1,x"], "error: seed='x' is not a non-negative integer"),
    (["shrink.budget=[1"], "error: cannot read override 'shrink.budget=[1'"),
    (["supernet.train.lr=nan"], "error: supernet.train.lr=nan is not a finite number"),
    (["evaluator.lr=inf"], "error: evaluator.lr=inf is not a finite number"),
    (["constraints.max_flops=-inf"], "error: constraints.max_flops=-inf is not a finite number"),
    (["executor.retries=-1"], "error: executor.retries=-1 must be an integer >= 0"),
    (["executor.retries=1.5"], "error: executor.retries: Value '1.5' of type 'float' could not be converted to Integer"),
    (["executor.spawn_after_s=abc"], "error: executor.spawn_after_s: Value 'abc' of type 'str' could not be converted to Float"),
    (["tracking.uri=file:///tmp/x"], "error: tracking.uri='file:///tmp/x' is a file store"),
    (["tracking.uri=bogus://x"], "error: tracking.uri='bogus://x': unknown scheme 'bogus'"),
    (["shrink.pockets.radius=-1"], "error: shrink.pockets.radius=-1 must be an integer >= 0"),
    (["evaluator.epochs=-1"], "error: evaluator.epochs=-1 must be an integer >= 1"),
    (["evaluator.lr=abc"], "error: evaluator.lr='abc' must be a finite number > 0"),
    (["space.C=0"], "error: space.C=0 must be an integer >= 1"),
    (["dataset.size=0"], "error: dataset.size=0 must be an integer >= 1"),
    (["tracking.progress_every_s=-1"], "error: tracking.progress_every_s=-1.0 must be a finite number >= 0"),
    (["+seeds=1"], "error: +seeds=1 adds a top-level key 'seeds' that nothing reads; did you mean seed?"),
    (["shrink.sample.n_samples=200"], "error: shrink.sample.n_samples=200 spends all of shrink.budget=200 in round 0"),
])
def test_composition_mistakes_are_one_line_with_the_closest_name(args: list[str], expected: str) -> None:
    from pipeline.cli import check, normalise_argv
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        check(normalise_argv(args))
    message = f"error: {caught.value}"
    assert message.startswith(expected) and "\n" not in message, message


def test_a_misspelt_key_is_refused_in_one_line_before_any_run_folder(tmp_path: Path) -> None:
    done = cli(tmp_path, "shrink.budgt=5")
    assert done.returncode != 0 and "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    assert done.stderr.strip() == "error: unknown key 'shrink.budgt'; did you mean shrink.budget?"
    assert not (tmp_path / "outputs").exists()


def test_missing_launcher_plugin_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import cli as checks
    from pipeline.errors import ConfigError

    monkeypatch.setattr(checks, "_has_module", lambda name: False)
    with pytest.raises(ConfigError, match=r"hydra/launcher=joblib needs its Hydra plugin.*nas-shrink\[parallel\]"):
        checks.check(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "seed=0,1"])


def test_valid_command_lines_pass_the_check() -> None:
    from pipeline.cli import check

    check(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=8", "seed=0,1,2"])
    check(["space=nb_macro", "evaluator=benchmark", "evaluator.path=x.csv", "constraints.max_flops=1e8"])
    check(["--help"])
    check(["workers=2", "torch_threads=1"], "bench")


def test_help_names_every_group_and_its_options(tmp_path: Path) -> None:
    done = cli(tmp_path, "--help")
    assert done.returncode == 0 and "locality-based search-space shrinkage" in done.stdout
    for group in sorted(p for p in (ROOT / "conf").iterdir() if p.is_dir()):
        options = ", ".join(sorted(f.stem for f in group.glob("*.yaml")))
        assert f"{group.name}: {options}" in done.stdout
    assert "--hydra-help" in done.stdout and "README" in done.stdout


def test_ctrl_c_during_evaluation_prints_the_resume_command(tmp_path: Path) -> None:
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "supernet=none", "progress=false"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout is not None
    proc.stdout.readline()  # the round table's header: evaluation of round 0 has begun
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 130 and len(lines) <= 3, err
    run_dir = lines[-1].split("resume with: python -m pipeline resume=")[1]
    assert (tmp_path / run_dir / "run.json").is_file()


@pytest.mark.slow
def test_twenty_simultaneous_identical_starts_get_twenty_folders_and_one_result(tmp_path: Path) -> None:
    import json

    first = cli(tmp_path, "space=toy", *QUICK)  # creates the SQLite store once (a fresh store is not concurrent-safe)
    assert first.returncode == 0, first.stderr
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline", "space=toy", *QUICK], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(20)]
    outs = [(p.communicate(timeout=HANG_GUARD_S), p.returncode) for p in procs]
    assert all(rc == 0 for _, rc in outs), [err for (_, err), rc in outs if rc][:1]
    paths = [Path(out.split("Shrunk space: ")[1].split()[0]) for (out, _), _ in outs]
    assert len({p.parent.parent for p in paths}) == 20
    members = lambda p: sorted(str(m) for pk in json.loads(p.read_text())["pockets"] for m in pk["members"])  # noqa: E731
    assert all(members(p) == members(paths[0]) for p in paths)


@pytest.mark.parametrize("args", [["--help"], ["shrink.budgt=3"], ["shrink.budget=0"], ["+space=nb2011"], ["+foo=1"]])
def test_help_and_config_refusals_never_import_torch(tmp_path: Path, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", *args], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=HANG_GUARD_S)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert imported and "torch" not in imported and "mlflow" not in imported
    assert (done.returncode == 0) == (args == ["--help"])


def test_help_shows_the_composition_it_was_given(tmp_path: Path) -> None:
    done = cli(tmp_path, "space=toy", "shrink.budget=70", "--help")
    assert done.returncode == 0 and "_target_: spaces.toy.ToySpace" in done.stdout and "budget: 70" in done.stdout
    assert "space: mobilenet, nb101, nb201, nb_macro, toy" in done.stdout


def test_resuming_a_folder_with_a_cut_json_file_names_the_file(tmp_path: Path) -> None:
    from pipeline.run import run
    from tests.conftest import compose_cfg

    run(compose_cfg("space=toy", "supernet=none", "progress=false", "shrink.budget=21",
                    f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"), tmp_path / "run")
    (tmp_path / "run" / ".hydra").mkdir(exist_ok=True)  # as a command-line run leaves it: its overrides
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text(
        f"- space=toy\n- supernet=none\n- shrink.budget=21\n- tracking.uri=sqlite:///{tmp_path}/mlflow.db\n")
    marker = next((tmp_path / "run" / "round_000").glob("*/_done.json"))
    for cut, fix in ((marker, "move it aside to recompute"), (tmp_path / "run" / "run.json", "start a new run")):
        text = cut.read_text()
        cut.write_text(text[: len(text) // 2])
        line = one_line_error(cli(tmp_path, "resume=run"))
        assert line.startswith(f"error: {cut.relative_to(tmp_path)} is cut or not JSON") and fix in line, line
        cut.write_text(text)


@pytest.mark.slow  # a 3-job sweep, ~8 s; the verdict's lines have their own fast checks below
def test_a_ground_truth_run_and_a_three_method_sweep_print_their_verdict(tmp_path: Path, toy_table: Path) -> None:
    table = ["space=toy", "evaluator=benchmark", f"evaluator.path={toy_table}", "supernet=none", "progress=false",
             "shrink.budget=24"]
    sweep = cli(tmp_path, "-m", *table, "shrink=lissnas,topk,random", "hydra.sweep.dir=sweep")
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    assert sweep.stdout.count("verdict (ground truth, test accuracy): emitted space mean") == 3  # one per run
    assert "vs round-0 uniform sample mean" in sweep.stdout
    tail = sweep.stdout[sweep.stdout.rindex("\n\n"):]  # the sweep's summary comes after the last job
    assert all(f"| {method} " in tail or f"shrink={method}" in tail for method in ("lissnas", "topk", "random")), tail
    assert "Sweep run: http://127.0.0.1:5000/#/experiments/" in sweep.stdout.splitlines()[-1]


def test_lines_of_a_parallel_sweeps_job_carry_its_number() -> None:
    import io

    from pipeline.__main__ import Prefixed

    sink = io.StringIO()
    out = Prefixed(sink, "[job 3] ")
    out.write("round 0\nround")
    out.write(" 1\n\nemitted\n")
    assert sink.getvalue() == "[job 3] round 0\n[job 3] round 1\n[job 3] \n[job 3] emitted\n"


def test_an_interrupted_sweep_names_its_folder_and_the_command_that_continues_it() -> None:
    from pipeline.__main__ import interrupted_message

    text = interrupted_message(None, "python -m pipeline", Path("multirun/2026-12-06/10-00-00-1"),
                               ["-m", "seed=0,1,2", "hydra/launcher=joblib"])
    first, second = text.splitlines()
    assert "kept in multirun/2026-12-06/10-00-00-1" in first
    assert second == ("continue with: python -m pipeline -m seed=0,1,2 hydra/launcher=joblib "
                      "hydra.sweep.dir=multirun/2026-12-06/10-00-00-1")


def test_a_refining_method_may_spend_its_whole_budget_on_round_zero() -> None:
    from pipeline.cli import check

    assert check(["shrink=op_pruning", "shrink.budget=40"]) is not None  # n_samples 80: round 0 refines already


def test_the_verdict_reads_the_emitted_space_against_the_sample_and_the_space() -> None:
    from pipeline.console import verdict_lines

    lines = verdict_lines({"gt_mean": 90.77, "gt_best": 91.52, "regret": 0.0, "recall_top0.1pct": 0.9375,
                           "recall_top1pct": 0.452, "sample_mean_test_acc": 77.33, "gt_full_mean": 83.39})
    assert lines == ["verdict (ground truth, test accuracy): emitted space mean 90.77, best 91.52 (regret 0.00); "
                     "holds 94% of the space's top 0.1% and 45% of its top 1%",
                     "  vs round-0 uniform sample mean 77.33; whole space mean 83.39"]
    assert verdict_lines({"shrunk_size": 100.0}) == []  # no ground truth, no verdict
