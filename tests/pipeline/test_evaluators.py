"""Evaluators: deterministic training, benchmark lookups and their one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets import BenchmarkOnly, Cifar, DatasetUnavailableError, Digits
from pipeline.evaluators.base import EvaluatorError
from pipeline.evaluators.benchmark import BenchmarkEvaluator
from pipeline.evaluators.train import TrainEvaluator
from spaces.nb201 import NB201Space
from spaces.toy import ToySpace

TOY = "width=32;activation=relu;depth=1"


def test_digits_splits_are_stratified_and_standardised() -> None:
    splits = Digits().splits
    assert (len(splits.train.y), len(splits.val.y), len(splits.test.y)) == (1077, 360, 360)
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 10
    assert abs(float(splits.train.x.mean())) < 1e-4


def test_training_is_deterministic_and_learns() -> None:
    space = ToySpace()
    first = TrainEvaluator(space, Digits(), seed=3, epochs=2).evaluate(space.from_str(TOY))
    again = TrainEvaluator(space, Digits(), seed=3, epochs=2).evaluate(space.from_str(TOY))
    assert first["val_acc"] == again["val_acc"] and first["train_loss"] == again["train_loss"]
    assert first["val_acc"] > 80.0  # 10 classes: chance is 10%


def test_nb201_network_trains_on_digits() -> None:
    space = NB201Space(C=4, N=1)
    arch = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
    metrics = TrainEvaluator(space, Digits(), seed=0, epochs=2).evaluate(arch)
    assert metrics["val_acc"] > 50.0 and metrics["params"] > 0


def test_benchmark_lookup(toy_table: Path) -> None:
    evaluator = BenchmarkEvaluator(ToySpace(), Digits(), str(toy_table))
    metrics = evaluator.evaluate(ToySpace().from_str(TOY))
    assert {"val_acc", "test_acc", "params"} <= set(metrics)


def test_missing_table_names_path_and_the_fix_of_its_kind(tmp_path: Path) -> None:
    from spaces.nb201 import NB201Space
    from spaces.nb_macro import NBMacroSpace

    with pytest.raises(EvaluatorError, match=r"nope.csv' not found; build it with `python -m pipeline.bench space=toy "
                                             r"dataset=digits out=.*nope.csv`"):
        BenchmarkEvaluator(ToySpace(), Digits(), str(tmp_path / "nope.csv"))
    with pytest.raises(EvaluatorError, match=r"nb201.csv' not found; convert the official release with "
                                             r"`python -m pipeline.convert_nb201"):
        BenchmarkEvaluator(NB201Space(), Digits(), str(tmp_path / "nb201.csv"))
    with pytest.raises(EvaluatorError, match=r"`python -m pipeline.convert_nb_macro SOURCE"):
        BenchmarkEvaluator(NBMacroSpace(), Digits(), str(tmp_path / "nb_macro.csv"))


@pytest.mark.parametrize("content, message", [
    ("arch,val_acc\nx,1\n", r"lacks column\(s\) dataset, test_acc"),
    ("arch,dataset,val_acc,test_acc\nwidth=9,digits,1,2\n", "line 2: toy: .*'width=9'"),
    ("arch,dataset,val_acc,test_acc\n" + TOY + ",digits,abc,2\n", "line 2: val_acc='abc' is not a number"),
    ("arch,dataset,val_acc,test_acc\n" + TOY + ",cifar10,1,2\n", "no rows for dataset 'digits' .*cifar10"),
])
def test_malformed_tables(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(EvaluatorError, match=message):
        BenchmarkEvaluator(ToySpace(), Digits(), str(path))


def test_arch_absent_from_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("arch,dataset,val_acc,test_acc\n" + TOY + ",digits,1,2\n")
    evaluator = BenchmarkEvaluator(ToySpace(), Digits(), str(path))
    with pytest.raises(EvaluatorError, match="width=8;activation=relu;depth=1' is not in benchmark table"):
        evaluator.evaluate(ToySpace().from_str("width=8;activation=relu;depth=1"))


def test_searching_on_test_accuracy_is_refused(toy_table: Path) -> None:
    with pytest.raises(EvaluatorError, match="search on the test set"):
        BenchmarkEvaluator(ToySpace(), Digits(), str(toy_table), metric="test_acc")


def test_offline_cifar_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match="cifar10"):
        Cifar("cifar10", root=str(tmp_path), download=False).load()


def test_benchmark_only_dataset_cannot_train() -> None:
    with pytest.raises(DatasetUnavailableError, match="ImageNet16-120' has no training data here"):
        BenchmarkOnly("ImageNet16-120").load()


def test_costs_come_from_the_network_built_for_the_dataset() -> None:
    space = NB201Space(C=4, N=1)
    arch = space.from_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
    model = space.build_model(arch, (1, 8, 8), 10)
    costs = TrainEvaluator(space, Digits(), epochs=1).costs(arch)
    assert costs["params"] == sum(p.numel() for p in model.parameters()) and costs["flops"] > 0


def test_a_new_table_like_evaluator_is_judged_by_its_own_table_through_its_capability() -> None:
    from pipeline.build import ground_truth
    from pipeline.evaluators.base import Evaluator

    class Lookup(Evaluator):  # e.g. a surrogate benchmark: not a BenchmarkEvaluator, but it reads a table
        reads_table = True

        def __init__(self, space: ToySpace) -> None:
            super().__init__(space)
            self.table = {space.to_str(a): {"val_acc": 1.0, "test_acc": float(i)}
                          for i, a in enumerate(space.sample_unique(space.size(), np.random.default_rng(0)))}

        def evaluate(self, arch):  # type: ignore[no-untyped-def]
            return self.table[self.space.to_str(arch)]

    space = ToySpace()
    truth = ground_truth("auto", space, Lookup(space))
    assert truth is not None and len(truth) == space.size()
