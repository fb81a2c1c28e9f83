"""Kill a run at a stage (or mid-evaluation), resume it, and get exactly the uninterrupted result."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.run import run
from pipeline.stages import emit, evaluate, explore, graph, pockets, sample
from tests.conftest import compose_cfg
from tests.pipeline.test_run import TOY_SHRINK

MODULES = {"sample": sample, "explore": explore, "evaluate": evaluate, "graph": graph, "pockets": pockets, "emit": emit}


def cfg(tmp_path: Path, table: Path):  # type: ignore[no-untyped-def]
    return compose_cfg("space=toy", "evaluator=benchmark", f"evaluator.path={table}", "progress=false",
                       f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", *TOY_SHRINK)


def outcome(run_dir: Path) -> tuple[str, str]:
    """Return what must not change: the emitted space's pockets and the per-round table."""
    import json

    pockets_ = json.loads((run_dir / "emit" / "shrunk_space.json").read_text())["pockets"]
    with (run_dir / "rounds.csv").open() as handle:
        rounds = [{k: v for k, v in r.items()} for r in csv.DictReader(handle)]
    return json.dumps(pockets_), json.dumps(rounds)


def kill_points(run_dir: Path) -> list[tuple[int, str]]:
    """Every (round, stage) an uninterrupted run went through, plus emit."""
    points = [(int(p.parent.name.split("_")[1]), p.name) for p in sorted(run_dir.glob("round_*/*")) if p.is_dir()]
    return [*points, (-1, "emit")]


def interrupt_and_resume(tmp_path: Path, table: Path, point: tuple[int, str], monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Run until ``point`` raises KeyboardInterrupt, then rerun on the same folder."""
    round_index, stage = point
    module = MODULES[stage]
    original = module.run

    def killed(ctx, stage_cfg):  # type: ignore[no-untyped-def]
        if stage == "emit" or ctx.round == round_index:
            raise KeyboardInterrupt
        return original(ctx, stage_cfg)

    run_dir = tmp_path / f"{round_index}-{stage}"
    monkeypatch.setattr(module, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        run(cfg(tmp_path, table), run_dir)
    monkeypatch.setattr(module, "run", original)
    run(cfg(tmp_path, table), run_dir)
    return outcome(run_dir)


@pytest.fixture
def reference(tmp_path: Path, toy_table: Path) -> tuple[Path, tuple[str, str]]:
    run(cfg(tmp_path, toy_table), tmp_path / "reference")
    return tmp_path / "reference", outcome(tmp_path / "reference")


@pytest.mark.parametrize("which", [1, -2, -1])  # round 0's evaluate, the last pockets stage, emit
def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path: Path, toy_table: Path, reference, which: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ref_dir, expected = reference
    assert interrupt_and_resume(tmp_path, toy_table, kill_points(ref_dir)[which], monkeypatch) == expected


@pytest.mark.slow
def test_every_kill_point_resumes_identically(tmp_path: Path, toy_table: Path, reference,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ref_dir, expected = reference
    points = kill_points(ref_dir)
    same = [interrupt_and_resume(tmp_path, toy_table, p, monkeypatch) == expected for p in points]
    print(f"kill points tried: {len(points)}, resumed identically: {sum(same)}")
    assert all(same)


def test_kill_in_the_middle_of_evaluating_keeps_what_was_scored(tmp_path: Path, toy_table: Path, reference,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.evaluators.benchmark import BenchmarkEvaluator

    _, expected = reference
    original, calls = BenchmarkEvaluator.evaluate, {"n": 0}

    def dies_on_the_fifth(self, arch):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, arch)

    monkeypatch.setattr(BenchmarkEvaluator, "evaluate", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        run(cfg(tmp_path, toy_table), tmp_path / "mid")
    journal = (tmp_path / "mid" / "round_000" / "evaluate" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 4
    monkeypatch.setattr(BenchmarkEvaluator, "evaluate", original)
    assert (run(cfg(tmp_path, toy_table), tmp_path / "mid"), outcome(tmp_path / "mid"))[1] == expected
