"""Against NAS-Bench-201 ground truth (../shared/data): the shrunk space beats the full space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluators.benchmark import read_table
from pipeline.run import run
from spaces.nb201 import NB201Space
from spaces.shrunk import ShrunkSpace
from tests.conftest import compose_cfg


@pytest.mark.parametrize("dataset", ["cifar10", pytest.param("cifar100", marks=pytest.mark.slow),
                                     pytest.param("ImageNet16-120", marks=pytest.mark.slow)])
def test_shrunk_space_beats_full_space_and_holds_a_top1_arch(tmp_path: Path, nb201_table: Path, dataset: str) -> None:
    cfg = compose_cfg("evaluator=benchmark", f"evaluator.path={nb201_table}", f"dataset={dataset}",
                      "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    shrunk = ShrunkSpace.load(run(cfg, tmp_path / "run").shrunk_space)
    truth = read_table(nb201_table, NB201Space(), dataset)
    assert len(truth) == 15_625
    test = {arch: row["test_acc"] for arch, row in truth.items()}
    top1 = set(sorted(test, key=test.get, reverse=True)[:157])  # top 1% of 15,625 by test accuracy
    members = shrunk.arch_strs()
    assert np.mean([test[a] for a in members]) > np.mean(list(test.values()))
    assert top1 & set(members)
    assert shrunk.size() < 0.01 * len(truth)
