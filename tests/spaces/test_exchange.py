"""Exchange formats: round trips, one-line errors, NASLib's NB201 convention, the Optuna adapter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from pipeline.export import main as export_main
from spaces.exchange import FORMATS, configspace, export, read_configspace, read_list, read_naslib, read_optuna
from spaces.nb201 import NB201Space
from spaces.nb201.costs import cost_table
from spaces.optuna_adapter import enqueue_seeds, suggest_arch, suggest_full, table_objective
from spaces.shrunk import Pocket, ShrunkSpace, ShrunkSpaceError
from tests.conftest import shared_file

S = NB201Space()
ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
         "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"]


@pytest.fixture
def shrunk() -> ShrunkSpace:
    pockets = [Pocket(0, ARCHS[0], 91.0, 1, ((ARCHS[0], 91.0), (ARCHS[1], 90.5))),
               Pocket(1, ARCHS[2], 88.0, 1, ((ARCHS[2], 88.0),))]
    return ShrunkSpace(S, pockets, "val_acc", {"seed": 0})


def test_every_format_round_trips(shrunk: ShrunkSpace, tmp_path: Path) -> None:
    paths = export(shrunk, tmp_path)
    assert set(paths) == set(FORMATS)
    assert ShrunkSpace.load(paths["json"]).to_dict() == shrunk.to_dict()
    assert read_list(paths["list"], S).arch_strs() == ARCHS
    naslib = read_naslib(paths["naslib"], S)
    assert naslib.arch_strs() == ARCHS and naslib.score(ARCHS[1]) == 90.5
    assert read_optuna(paths["optuna"], S).arch_strs() == ARCHS
    assert json.loads(paths["optuna"].read_text())["seed_ids"] == [0, 2]
    options = read_configspace(paths["configspace"], S)
    # Every member lies in the re-expanded product, which is larger than the union.
    assert all(all(op in opts for op, opts in zip(S.from_str(a), options, strict=True)) for a in ARCHS)
    assert configspace(shrunk)[1] == pytest.approx(np.prod([len(o) for o in options]) / 3)


def test_configspace_is_marked_lossy(shrunk: ShrunkSpace) -> None:
    cs, factor = configspace(shrunk)
    assert cs.meta["lossy"] is True and factor == pytest.approx(32 / 3)  # 5 edges with 2 options, 1 with 1


@pytest.mark.parametrize("name, content, message", [
    ("a.txt", ARCHS[0] + "\n|bogus~0|\n", "line 2: nb201"),
    ("b.json", '[{"compact": [0, 1, 2, 3, 4, 9], "label": 1}]', "record 0 field 'compact'/'label'"),
    ("c.json", '{"param": "arch_id"}', "field 'choices' must be a list"),
    ("d.json", "{oops", "not valid JSON"),
])
def test_malformed_exchange_files_are_one_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    reader = {"a.txt": read_list, "b.json": read_naslib, "c.json": read_optuna, "d.json": read_naslib}[name]
    with pytest.raises(ShrunkSpaceError, match=message):
        reader(path, S)


def test_naslib_tuples_match_the_reference_data() -> None:
    reference = json.loads(shared_file("zc_nasbench201.json").read_text())["cifar10"]
    table = cost_table(16, 5, 10, (3, 32, 32))
    for key, row in list(reference.items())[:50]:
        arch = S.from_compact(tuple(int(i) for i in key.strip("()").split(",")))
        assert S.to_compact(arch) == tuple(int(i) for i in key.strip("()").split(","))
        # The decoded cell has the reference's parameter count: the tuple convention is right.
        assert table.cost(arch)[0] == round(row["params"]["score"] * 1e6)


def test_optuna_adapter_searches_the_shrunk_space(shrunk: ShrunkSpace) -> None:
    table = {a: {"val_acc": 90.0 + i, "test_acc": 89.0 + i} for i, a in enumerate(ARCHS)}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    assert enqueue_seeds(study, shrunk) == 2
    study.optimize(table_objective(table, lambda t: suggest_arch(t, shrunk), S), n_trials=6)
    assert [t.user_attrs["arch"] for t in study.trials[:2]] == [ARCHS[0], ARCHS[2]]
    assert study.best_value == 92.0 and study.best_trial.user_attrs["test_acc"] == 91.0


def test_optuna_full_space_suggestion_is_valid() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    assert S.check(suggest_full(trial, S)) is None


def test_export_cli(shrunk: ShrunkSpace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert export_main([str(shrunk.save(tmp_path / "s.json")), "--out", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert "3 archs in 2 pockets" in out and "configspace is LOSSY" in out and "10.7x" in out
    assert export_main([str(tmp_path / "none.json"), "--out", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err


def test_export_without_configspace_skips_it_with_a_note(shrunk: ShrunkSpace, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ConfigSpace" else real(name, *a))
    source = str(shrunk.save(tmp_path / "s.json"))
    assert export_main([source, "--out", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert "configspace  skipped: needs ConfigSpace: pip install 'nas-shrink[export]'" in out
    assert (tmp_path / "x" / "archs.txt").is_file() and not (tmp_path / "x" / "configspace.json").exists()
    assert export_main([source, "--out", str(tmp_path / "y"), "--format", "configspace"]) == 2
    assert capsys.readouterr().err.strip() == "error: format 'configspace' needs ConfigSpace: pip install 'nas-shrink[export]'"


def test_a_small_gap_gets_forbidden_clauses_and_the_configspace_samples_members_only(tmp_path: Path) -> None:
    from spaces.exchange import CONFIGSPACE_NOTE, _param

    base = S.from_str(ARCHS[0])
    corners = [S.to_str(base[:5] + (a,)) for a in ("skip_connect", "nor_conv_3x3")]  # the last decision varies
    corners += [S.to_str(base[:4] + (b,) + base[5:]) for b in ("avg_pool_3x3",)]  # and the one before it
    members = sorted(set(corners))  # 3 of the 2 x 2 product: one non-member
    shrunk = ShrunkSpace(S, [Pocket(0, members[0], 1.0, 1, tuple((a, 1.0) for a in members))], "val_acc")
    cs, factor = configspace(shrunk)
    assert factor == 1.0 and len(cs.forbidden_clauses) == 4 - len(members) and cs.meta["lossy"] is False
    names = [_param(d) for d in S.decisions]
    drawn = {S.to_str(tuple(c[n] for n in names)) for c in cs.sample_configuration(60)}
    assert drawn == set(members)
    paths = export(shrunk, tmp_path, ("configspace", "list"))
    assert json.loads((paths["configspace"].parent / CONFIGSPACE_NOTE).read_text())["lossy"] is False


def test_a_lossy_configspace_says_so_beside_the_file(shrunk: ShrunkSpace, tmp_path: Path) -> None:
    from spaces.exchange import CONFIGSPACE_NOTE

    note = json.loads((export(shrunk, tmp_path)["configspace"].parent / CONFIGSPACE_NOTE).read_text())
    assert note["lossy"] is True and note["expansion_factor"] == pytest.approx(32 / 3) and "archs.txt" in note["note"]
