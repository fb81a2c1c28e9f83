"""ShrunkSpace: round trip, membership, sampling, and one-line errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spaces.shrunk import Pocket, ShrunkSpace, ShrunkSpaceError
from spaces.toy import ToySpace

A, B, C = "width=8;activation=relu;depth=1", "width=32;activation=relu;depth=1", "width=128;activation=tanh;depth=3"


@pytest.fixture
def shrunk() -> ShrunkSpace:
    pockets = [Pocket(0, A, 90.0, 1, ((A, 90.0), (B, 85.0))), Pocket(1, C, 80.0, 1, ((C, 80.0),))]
    return ShrunkSpace(ToySpace(), pockets, "val_acc", {"seed": 0})


def test_size_membership_iteration(shrunk: ShrunkSpace) -> None:
    space = ToySpace()
    assert shrunk.size() == 3 and len(shrunk) == 3
    assert A in shrunk and space.from_str(C) in shrunk and "width=8;activation=tanh;depth=1" not in shrunk
    assert [space.to_str(a) for a in shrunk] == [A, B, C]


def test_sample_is_uniform_over_members(shrunk: ShrunkSpace) -> None:
    rng = np.random.default_rng(0)
    draws = [ToySpace().to_str(shrunk.sample(rng)) for _ in range(3000)]
    counts = np.array([draws.count(a) for a in (A, B, C)])
    assert counts.sum() == 3000 and np.all(np.abs(counts - 1000) < 100)


def test_save_load_round_trip(shrunk: ShrunkSpace, tmp_path: Path) -> None:
    again = ShrunkSpace.load(shrunk.save(tmp_path / "s.json"))
    assert again.to_dict() == shrunk.to_dict()
    assert again.score(B) == 85.0


def broken(tmp_path: Path, shrunk: ShrunkSpace, edit) -> Path:
    data = shrunk.to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(version=7), "field 'version' is 7; this reader knows version 1"),
    (lambda d: d.update(format="other"), "field 'format': 'nas-shrink/shrunk-space' was expected"),
    (lambda d: d["pockets"][1].pop("members"), "field 'pockets/1': 'members' is a required property"),
    (lambda d: d["pockets"][0]["members"][1].update(score="high"), "field 'pockets/0/members/1/score': 'high' is not"),
    (lambda d: d.update(size=99), "field 'size' is 99"),
    (lambda d: d["pockets"][0]["members"][0].update(arch="width=9"), "width=9"),
    (lambda d: d["base_space"]["config"].update(_target_="os.system"), "'os.system' is not a SearchSpace"),
    (lambda d: d["base_space"]["config"].update(_target_="antigravity.Space"), "import antigravity first"),
    (lambda d: d["base_space"]["config"].update(_target_="os;rm"), "field 'base_space/config/_target_'"),
    (lambda d: d["base_space"]["config"].update(_target_="spaces.base.nope"), "cannot be imported"),
])
def test_bad_files_name_the_field(shrunk: ShrunkSpace, tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ShrunkSpaceError, match=message):
        ShrunkSpace.load(broken(tmp_path, shrunk, edit))


def test_missing_and_non_json_files(tmp_path: Path) -> None:
    with pytest.raises(ShrunkSpaceError, match="not found; run `python -m pipeline`"):
        ShrunkSpace.load(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{oops")
    with pytest.raises(ShrunkSpaceError, match="not valid JSON"):
        ShrunkSpace.load(tmp_path / "x.json")
