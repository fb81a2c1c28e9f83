"""End to end through `pipeline.run`: MLflow run tree, determinism, resume, config errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.errors import ConfigError
from pipeline.run import run
from spaces.shrunk import ShrunkSpace
from tests.conftest import HANG_GUARD_S, compose_cfg

TOY_SHRINK = ["shrink.sample.n_samples=8", "shrink.explore.seeds_per_round=2", "shrink.explore.neighbors_per_seed=2",
              "shrink.budget=20", "shrink.patience=3", "shrink.pockets.good_quantile=0.5"]


def toy_cfg(tmp_path: Path, table: Path, *extra: str):
    method_knobs = [] if any(e.startswith("shrink=") and e != "shrink=lissnas" for e in extra) else TOY_SHRINK
    return compose_cfg("space=toy", "evaluator=benchmark", f"evaluator.path={table}", "progress=false",
                       f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *method_knobs, *extra)


def test_one_run_per_invocation_with_prefixed_figures_and_stage_files(tmp_path: Path, toy_table: Path) -> None:
    result = run(toy_cfg(tmp_path, toy_table), tmp_path / "run")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    parent = client.get_run(result.run_id)
    assert {"space", "evaluator", "dataset", "seed", "mlflow.source.git.commit", "mlflow.user"} <= set(parent.data.tags)
    assert parent.data.tags["space"] == "toy" and parent.data.params["shrink.budget"] == "20"
    assert parent.data.params["shrink.latent.locality"] == "space"  # the graph stage's locality, though no encoder ran
    assert "mlflow.source.git.branch" in parent.data.tags
    assert not client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'")
    metrics = parent.data.metrics
    assert {"result/size", "result/mean_test_acc", "result/regret", "result/evaluations"} <= set(metrics)
    assert not any(k.startswith("final_") or "/" not in k for k in metrics)  # every figure under a prefix
    assert metrics["result/size"] == ShrunkSpace.load(result.shrunk_space).size()
    history = client.get_metric_history(result.run_id, "round/evaluated_total")
    assert [m.step for m in history] == list(range(len(result.rounds)))
    chosen = {m.step for m in client.get_metric_history(result.run_id, "round/chosen") if m.value == 1.0}
    assert chosen == {int(parent.data.tags["result.round"])}
    folders = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"emit", "round_000", "rounds.csv", "shrunk_space.json"} <= folders
    assert {"round_000/evaluate/scores.csv", "round_000/evaluate/journal.jsonl"} <= {
        a.path for a in client.list_artifacts(result.run_id, "round_000/evaluate")}
    assert {"emit/edf.png", "emit/pockets.png", "emit/op_frequencies.png"} <= {
        a.path for a in client.list_artifacts(result.run_id, "emit")}
    assert [d.dataset.name for d in parent.inputs.dataset_inputs] == [toy_table.name]
    local = client.download_artifacts(result.run_id, "shrunk_space.json", str(tmp_path))
    from_run = ShrunkSpace.load(f"runs:/{result.run_id}/shrunk_space.json", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    assert ShrunkSpace.load(local).size() > 0 and from_run.to_dict() == ShrunkSpace.load(result.shrunk_space).to_dict()


def test_params_are_the_user_facing_config_of_stages_that_ran(tmp_path: Path, toy_table: Path) -> None:
    result = run(toy_cfg(tmp_path, toy_table, "shrink=topk"), tmp_path / "run")
    params = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id).data.params
    assert not [k for k in params if k.endswith("_target_") or k.startswith(("provenance", "tracking.", "supernet."))]
    assert params["shrink.method"] == "topk" and "shrink.pockets.radius" not in params  # pockets did not run
    assert params["shrink.select.rule"] == "top" and "shrink.sample.n_samples" in params  # one name per stage node
    assert "dataset.root" not in params and "None" not in params.values()  # a table lookup reads no images


def test_stage_runs_are_opt_in(tmp_path: Path, toy_table: Path) -> None:
    result = run(toy_cfg(tmp_path, toy_table, "tracking.stage_runs=true"), tmp_path / "run")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    children = client.search_runs(["1"], f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert {c.info.run_name for c in children} >= {"r0/sample", "r0/evaluate", "r1/explore", "emit"}
    evaluate = next(c for c in children if c.info.run_name == "r0/evaluate")
    assert "evaluated" in evaluate.data.metrics and "journal.jsonl" in {a.path for a in client.list_artifacts(
        evaluate.info.run_id)}
    assert "result/size" in client.get_run(result.run_id).data.metrics


def test_same_seed_same_shrunk_space(tmp_path: Path, toy_table: Path) -> None:
    spaces = [ShrunkSpace.load(run(toy_cfg(tmp_path, toy_table), tmp_path / f"run{i}").shrunk_space) for i in range(2)]
    assert spaces[0].to_dict()["pockets"] == spaces[1].to_dict()["pockets"]


def test_resume_reuses_finished_stages_and_matches(tmp_path: Path, toy_table: Path) -> None:
    cfg = toy_cfg(tmp_path, toy_table)
    first = run(cfg, tmp_path / "run")
    expected = ShrunkSpace.load(first.shrunk_space).to_dict()["pockets"]
    # Simulate a crash during the last round's pockets stage and before emit.
    last = tmp_path / "run" / f"round_{len(first.rounds) - 1:03d}"
    shutil.rmtree(last / "pockets")
    shutil.rmtree(tmp_path / "run" / "emit")
    again = run(cfg, tmp_path / "run")
    assert ShrunkSpace.load(again.shrunk_space).to_dict()["pockets"] == expected
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_run(again.run_id).info.experiment_id
    assert again.run_id == first.run_id  # the resume continued the same MLflow run
    # Finished rounds are reused and not logged twice.
    steps = [m.step for m in client.get_metric_history(again.run_id, "round/evaluated_total")]
    assert steps == list(range(len(first.rounds))) and experiment
    assert [m.step for m in client.get_metric_history(again.run_id, "round/chosen")] == steps


def test_resume_with_stage_runs_logs_no_stage_twice(tmp_path: Path, toy_table: Path) -> None:
    cfg = toy_cfg(tmp_path, toy_table, "tracking.stage_runs=true")
    first = run(cfg, tmp_path / "run")
    last = tmp_path / "run" / f"round_{len(first.rounds) - 1:03d}"
    shutil.rmtree(last / "pockets")
    shutil.rmtree(tmp_path / "run" / "emit")
    run(cfg, tmp_path / "run")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    # Finished stages are reused and not logged twice; the lost pockets stage ran (and was logged) again.
    assert len(client.search_runs(["1"], "tags.stage = 'evaluate'")) == len(first.rounds)
    assert len(client.search_runs(["1"], "tags.stage = 'pockets'")) == len(first.rounds) + 1


def test_resume_with_another_config_is_refused(tmp_path: Path, toy_table: Path) -> None:
    run(toy_cfg(tmp_path, toy_table), tmp_path / "run")
    with pytest.raises(ConfigError, match="was made with seed=0, not 5; drop those overrides"):
        run(toy_cfg(tmp_path, toy_table, "seed=5"), tmp_path / "run")


@pytest.mark.parametrize("override, message", [
    ("+shrink.budgt=3", "shrink.budgt is not a setting of method lissnas"),
    ("shrink.budget=0", r"shrink.budget=0 must be an integer >= 1"),
    ("shrink.pockets.good_quantile=1.5", r"good_quantile=1.5 must lie in \[0, 1\)"),
    ("shrink.explore.acquisition=greedy", r"shrink.explore.acquisition='greedy' is not one of ucb, random"),
    ("shrink.pockets.region=cloud", r"shrink.pockets.region='cloud' is not one of surrogate, members, ball"),
    ("shrink.explore.kappa=-1", r"shrink.explore.kappa=-1.0 must be a finite number >= 0"),
    ("shrink.pockets.target_fraction=2.0", r"shrink.pockets.target_fraction=2.0 must lie in \[0, 1\]"),
    ("shrink.explore.batch_size=0", r"shrink.explore.batch_size=0 must be an integer >= 1"),
    ("shrink.explore.mutation_fraction=1.5", r"shrink.explore.mutation_fraction=1.5 must lie in \[0, 1\]"),
    ("shrink.pockets.radius=0",
     r"shrink.pockets.radius=0 leaves every pocket its seed alone, below shrink.pockets.min_pocket_size=2"),
    ("shrink.pockets.min_pocket_size=100000", r"shrink.pockets.min_pocket_size=100000 exceeds shrink.budget="),
])
def test_broken_shrink_config_names_the_key(tmp_path: Path, toy_table: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run(toy_cfg(tmp_path, toy_table, override), tmp_path / "run")


@pytest.mark.parametrize("method, extra", [
    ("random", ["shrink.select.size=5", "shrink.sample.n_samples=20"]),
    ("topk", ["shrink.select.size=5", "shrink.sample.n_samples=20"]),
    ("op_pruning", ["shrink.sample.n_samples=10", "shrink.sample.samples_per_round=5", "shrink.refine.target_size=2"]),
    ("regnet", ["shrink.sample.n_samples=10", "shrink.sample.samples_per_round=5", "shrink.refine.target_size=2"]),
])
def test_every_baseline_runs_in_the_same_harness(tmp_path: Path, toy_table: Path, method: str, extra: list[str]) -> None:
    cfg = compose_cfg("space=toy", "evaluator=benchmark", f"evaluator.path={toy_table}", "progress=false",
                      f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"shrink={method}", "shrink.budget=20", *extra)
    result = run(cfg, tmp_path / "run")
    shrunk = ShrunkSpace.load(result.shrunk_space)
    assert shrunk.size() > 0 and shrunk.provenance["method"] == method
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    metrics = client.get_run(result.run_id).data.metrics
    # Ground truth (the table's test accuracy) judges every method under the same names.
    for name in ("result/mean_test_acc", "result/regret", "space/recall_top5pct", "space/shrink_index", "space/op_entropy"):
        assert name in metrics
    assert [m.step for m in client.get_metric_history(result.run_id, "round/gt_mean")] == list(range(len(result.rounds)))


def test_methods_share_the_round0_sample(tmp_path: Path, toy_table: Path) -> None:
    first = {}
    for method in ("lissnas", "op_pruning"):
        cfg = toy_cfg(tmp_path, toy_table, f"shrink={method}", "shrink.sample.n_samples=8", "shrink.budget=20")
        run(cfg, tmp_path / method)
        first[method] = (tmp_path / method / "round_000" / "sample" / "proposals.csv").read_text()
    assert first["lissnas"] == first["op_pruning"]


@pytest.mark.parametrize("evaluator", ["zico", "ensemble"])
def test_proxy_evaluators_drive_the_pipeline_unchanged(tmp_path: Path, toy_table: Path, evaluator: str) -> None:
    cfg = compose_cfg("space=toy", f"evaluator={evaluator}", "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                      f"ground_truth={toy_table}", *TOY_SHRINK)
    result = run(cfg, tmp_path / "run")
    shrunk = ShrunkSpace.load(result.shrunk_space)
    assert shrunk.size() > 0 and shrunk.metric == evaluator
    metrics = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id).data.metrics
    assert "result/mean_test_acc" in metrics and "space/kendall_tau" in metrics


def test_a_run_folder_belongs_to_one_process_at_a_time(tmp_path: Path, toy_table: Path) -> None:
    from tests.conftest import lock_held_elsewhere

    with lock_held_elsewhere(tmp_path / "run" / ".lock") as pid:
        with pytest.raises(ConfigError, match=rf"run folder .*run is in use by pid {pid} on .*; wait for it"):
            run(toy_cfg(tmp_path, toy_table), tmp_path / "run")
        assert not (tmp_path / "run" / "run.json").exists()  # refused before anything was written
    assert run(toy_cfg(tmp_path, toy_table), tmp_path / "run").shrunk_space.is_file()  # a dead holder's lock is gone


@pytest.mark.slow  # four interpreters at once on 2 cores; default-suite time
def test_four_processes_creating_one_fresh_sqlite_store_all_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = f"from pipeline.tracking import Tracker; Tracker('sqlite:///{tmp_path}/mlflow.db', 'nas-shrink')"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=HANG_GUARD_S)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for e in errors if e][:1]


def test_a_half_created_sqlite_store_is_one_line_saying_how_to_recover(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.tracking

    from pipeline.tracking import Tracker

    def broken(self, name):  # what MLflow raises after a kill mid-migration
        raise RuntimeError("(sqlite3.OperationalError) table _alembic_tmp_latest_metrics already exists")

    monkeypatch.setattr(mlflow.tracking.MlflowClient, "get_experiment_by_name", broken)
    db = tmp_path / "mlflow.db"
    with pytest.raises(ConfigError, match=rf"MLflow store {db} was left half-created .*mv {db} {db}.broken"):
        Tracker(f"sqlite:///{db}", "nas-shrink")


def test_a_full_disk_is_named_as_the_cause_not_a_half_created_store(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow.tracking

    from pipeline.tracking import Tracker

    def full(self, name):  # what SQLite says when the store cannot grow
        raise RuntimeError("(sqlite3.OperationalError) database or disk is full [alembic upgrade]")

    monkeypatch.setattr(mlflow.tracking.MlflowClient, "get_experiment_by_name", full)
    db = tmp_path / "mlflow.db"
    with pytest.raises(ConfigError, match=rf"MLflow store {db}: the disk holding it is full"):
        Tracker(f"sqlite:///{db}", "nas-shrink")


def test_a_killed_store_creation_leaves_nothing_behind_for_long(tmp_path: Path) -> None:
    from pipeline.tracking import Tracker

    db = tmp_path / "mlflow.db"
    (tmp_path / "mlflow.db.creating-999999").write_text("half")  # a creator killed mid-migration
    Tracker(f"sqlite:///{db}", "nas-shrink")
    assert db.is_file() and not list(tmp_path.glob("mlflow.db.creating-*"))
