"""The NB201 converter: CSV exports, the official API, and costs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.artifacts import read_rows
from pipeline.convert_nb201 import ConversionError, convert, dataset_from_name, main, rows_from_api
from pipeline.datasets import BenchmarkOnly
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from spaces.nb201 import NB201Space

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_dataset_from_file_name() -> None:
    assert dataset_from_name(Path("nasbench201_cifar100.csv")) == "cifar100"
    assert dataset_from_name(Path("x_ImageNet16-120.csv")) == "ImageNet16-120"
    with pytest.raises(ConversionError, match="pass --dataset"):
        dataset_from_name(Path("results.csv"))


def test_export_converts_and_is_readable(tmp_path: Path) -> None:
    src = tmp_path / "nb_cifar10.csv"
    src.write_text("file id,arch str,cfg name,C,N,train accuracy,validation accuracy,test accuracy\n"
                   f"1,{ARCH},infer.tiny,16,5,99.9,90.77,90.51\n")
    assert convert([src], tmp_path / "t.csv") == 1
    row = read_rows(tmp_path / "t.csv")[0]
    assert row == {"arch": ARCH, "dataset": "cifar10", "val_acc": 90.77, "test_acc": 90.51,
                   "params": 802_426.0, "flops": 227_902_720.0, "train_acc": 99.9}
    evaluator = BenchmarkEvaluator(NB201Space(), BenchmarkOnly("cifar10"), str(tmp_path / "t.csv"))
    assert evaluator.evaluate(NB201Space().from_str(ARCH))["val_acc"] == 90.77


class FakeAPI:
    """The slice of the NATS-Bench topology API the converter calls."""

    def __len__(self) -> int:
        return 1

    def arch(self, index: int) -> str:
        return ARCH

    def get_more_info(self, index: int, dataset: str, hp: str, is_random: bool) -> dict[str, float]:
        assert hp == "200" and is_random is False
        base = {"cifar10-valid": 90.0, "cifar100": 70.0}[dataset]
        return {"valid-accuracy": base, "test-accuracy": base + 1, "train-accuracy": 99.0}


def test_official_api_protocol() -> None:
    rows = list(rows_from_api(FakeAPI(), ["cifar10", "cifar100"]))
    assert [(r["dataset"], r["val_acc"], r["test_acc"]) for r in rows] == [("cifar10", 90.0, 91.0), ("cifar100", 70.0, 71.0)]


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.csv' not found")
    bad = tmp_path / "x_cifar10.csv"
    bad.write_text("arch str,validation accuracy\n")
    assert main([str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    assert "lacks column(s) test accuracy" in capsys.readouterr().err
