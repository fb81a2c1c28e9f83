"""`python -m pipeline.search`: a shrunk space searched with the target's evaluator, linked, resumable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipeline.cli import compose
from pipeline.errors import ConfigError
from pipeline.run import run
from pipeline.search import JOURNAL, check_settings, search
from spaces.shrunk import ShrunkSpace
from tests.conftest import HANG_GUARD_S, ROOT
from tests.pipeline.test_run import toy_cfg


def search_cfg(tmp_path: Path, table: Path, *extra: str):
    """Compose conf/search.yaml for the toy space and its table, as the command does."""
    return compose("search", ["space=toy", "evaluator=benchmark", f"evaluator.path={table}", "progress=false",
                              f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *extra], hydra_node=False)


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory: pytest.TempPathFactory, toy_table: Path) -> Path:
    """A toy shrink run's emitted space."""
    folder = tmp_path_factory.mktemp("shrink")
    return run(toy_cfg(folder, toy_table, "supernet=none", "shrink.pockets.target_size=10"), folder / "run").shrunk_space


def test_a_search_in_the_shrunk_space_reuses_its_scores_and_links_the_shrink_run(
        tmp_path: Path, toy_table: Path, shrunk: Path) -> None:
    result = search(search_cfg(tmp_path, toy_table, f"shrunk={shrunk}", "budget=4"), tmp_path / "s")
    space = ShrunkSpace.load(shrunk)
    assert result.best_arch in space and 0 < result.spent <= 4
    assert result.known == space.evaluated_count() > 0  # same task: the shrink run's member scores are free
    assert result.source.evaluations == 20 and result.source.run_id == space.provenance["run_id"]
    logged = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id)
    assert logged.data.tags["shrink_run_id"] == space.provenance["run_id"] and logged.data.tags["domain"] == "shrunk"
    contexts = {t.value for d in logged.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context"}
    assert contexts == {"search", "search_space"}
    assert {"search/spent", "search/best_score", "search/pick_test_acc", "search/regret",
            "search/source_evaluations"} <= set(logged.data.metrics)
    saved = json.loads((tmp_path / "s" / "search.json").read_text())
    assert saved["best_arch"] == result.best_arch and len(saved["history"]) == result.spent


def test_another_task_gets_no_free_scores_and_the_full_space_is_searched_without_a_shrunk_space(
        tmp_path: Path, toy_table: Path, shrunk: Path) -> None:
    target = tmp_path / "other.csv"  # the same archs scored on another dataset
    target.write_text(toy_table.read_text().replace(",digits,", ",cifar10,"))
    other = search(search_cfg(tmp_path, target, f"shrunk={shrunk}", "budget=5", "dataset=cifar10"), tmp_path / "a")
    assert other.known == 0 and other.spent == 5  # the source's scores are not this target's
    full = search(search_cfg(tmp_path, toy_table, "budget=6"), tmp_path / "b")
    assert full.source.shrunk is None and full.spent == 6 and full.figures["domain_size"] == 27


def test_a_cut_search_resumes_by_replaying_its_journal(tmp_path: Path, toy_table: Path) -> None:
    cfg = search_cfg(tmp_path, toy_table, "budget=12", "searcher=local_search")
    whole = search(cfg, tmp_path / "whole")
    journal = (tmp_path / "whole" / JOURNAL).read_text().splitlines()
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / JOURNAL).write_text("\n".join(journal[:5]) + "\n" + journal[5][:9])  # five records and a torn one
    resumed = search(cfg, cut)
    assert resumed.replayed == 5 and resumed.spent == whole.spent == 12
    assert (resumed.best_arch, resumed.best_score) == (whole.best_arch, whole.best_score)
    lines = (cut / JOURNAL).read_text().splitlines()
    assert lines[5] == journal[5][:9] and len(lines) == 13  # the torn record stays alone on its line
    assert [json.loads(line) for line in lines[:5] + lines[6:]] == [json.loads(line) for line in journal]


def test_a_folder_of_other_settings_is_refused(tmp_path: Path, toy_table: Path) -> None:
    search(search_cfg(tmp_path, toy_table, "budget=3"), tmp_path / "s")
    with pytest.raises(ConfigError, match="holds a search with other settings \\(budget\\)"):
        search(search_cfg(tmp_path, toy_table, "budget=4"), tmp_path / "s")


@pytest.mark.parametrize(("extra", "message"), [
    (["searcher=reaa"], "searcher='reaa' is not a searcher; did you mean rea?"),
    (["budget=0"], "budget=0 must be an integer >= 1"),
    (["reuse_scores=maybe"], "reuse_scores='maybe' is not one of auto, true, false"),
])
def test_bad_settings_are_refused_by_key(tmp_path: Path, toy_table: Path, extra: list[str], message: str) -> None:
    from pipeline.checks import check_values

    cfg = search_cfg(tmp_path, toy_table, *extra)
    with pytest.raises(ConfigError, match=message.replace("(", "\\(").replace("?", "\\?")):
        check_values(cfg, "search")  # each knob's rule, as the command checks it before its own checks
        check_settings(cfg)


def test_a_shrunk_space_of_another_space_is_one_line(tmp_path: Path, toy_table: Path, shrunk: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline.search", f"shrunk={shrunk}", "space=nb201",
                           f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=HANG_GUARD_S)
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        f"error: shrunk={shrunk} is a subspace of 'toy', but space=nb201; set space=toy"]


def test_help_names_the_knobs_and_shows_the_composition(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline.search", "budget=7", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=HANG_GUARD_S)
    assert done.returncode == 0 and "nas-shrink-search" in done.stdout and "reuse_scores=auto" in done.stdout
    assert "budget: 7" in done.stdout and "searcher: rea" in done.stdout


def test_a_budget_on_the_target_cuts_the_shrunk_space_too(tmp_path: Path, toy_table: Path, shrunk: Path) -> None:
    import csv

    rows = {r["arch"]: float(r["params"]) for r in csv.DictReader(toy_table.open())}
    members = ShrunkSpace.load(shrunk).arch_strs()
    cap = sorted(rows[a] for a in members)[len(members) // 2]  # half the members fit
    result = search(search_cfg(tmp_path, toy_table, f"shrunk={shrunk}", "budget=20", "reuse_scores=false",
                               f"constraints.max_params={cap}"), tmp_path / "s")
    history = json.loads((tmp_path / "s" / "search.json").read_text())["history"]
    assert history and all(rows[h["arch"]] <= cap for h in history) and rows[result.best_arch] <= cap
