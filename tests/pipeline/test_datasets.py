"""Fashion-MNIST from idx files: the format, the fixed splits, and one-line errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from pipeline.datasets import FASHION_FILES, DatasetUnavailableError, FashionMnist, read_idx

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """Write ``array`` (uint8) as a gzipped idx file."""
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def fake_release(root: Path, n_train: int = 200, n_test: int = 50) -> Path:
    """Write a small release in the official file layout: class k images are all pixel value 20k."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = np.repeat(20 * labels, 28 * 28).reshape(n, 28, 28)
        write_idx(root / FASHION_FILES[split][0], images, 2051)
        write_idx(root / FASHION_FILES[split][1], labels, 2049)
    return root


def test_idx_files_read_in_the_official_layout(tmp_path: Path) -> None:
    root = fake_release(tmp_path)
    images, labels = (read_idx(root / f, m) for f, m in zip(FASHION_FILES["train"], (2051, 2049), strict=True))
    assert images.shape == (200, 28, 28) and labels.shape == (200,)
    assert (images[:, 0, 0] == 20 * labels).all()


def test_splits_are_fixed_stratified_disjoint_and_resized(tmp_path: Path) -> None:
    dataset = FashionMnist(root=str(fake_release(tmp_path)), resolution=16, n_train=100, n_val=50, n_test=30)
    splits = dataset.splits
    assert (len(splits.train.y), len(splits.val.y), len(splits.test.y)) == (100, 50, 30)
    assert splits.input_shape == (1, 16, 16) and splits.num_classes == 10
    assert np.bincount(splits.val.y.numpy()).tolist() == [5] * 10
    again = FashionMnist(root=str(tmp_path), resolution=16, n_train=100, n_val=50, n_test=30).splits
    assert (again.train.x == splits.train.x).all() and (again.val.y == splits.val.y).all()
    assert abs(float(splits.train.x.mean())) < 1e-4
    # Every image of a class has one value: train and val images of a class must coincide after scaling.
    for k in range(10):
        assert float(splits.train.x[splits.train.y == k].std()) < 1e-4


def test_all_of_the_rest_trains_when_n_train_is_null(tmp_path: Path) -> None:
    splits = FashionMnist(root=str(fake_release(tmp_path)), n_val=40, channels=3).splits
    assert (len(splits.train.y), len(splits.val.y), len(splits.test.y)) == (160, 40, 50)
    assert splits.input_shape == (3, 28, 28)


def test_missing_files_name_the_apt_line_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError, match=r"dataset.root=.*train-images-idx3-ubyte.gz.*apt-get install "
                                                      r"dataset-fashion-mnist"):
        FashionMnist(root=str(tmp_path)).check()


def test_a_corrupt_file_is_named(tmp_path: Path) -> None:
    root = fake_release(tmp_path)
    (root / FASHION_FILES["train"][1]).write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 8))
    with pytest.raises(DatasetUnavailableError, match="train-labels-idx1-ubyte.gz is not an idx file of magic 2049"):
        FashionMnist(root=str(root), n_val=10).load()


@pytest.mark.parametrize("kwargs, message", [
    ({"resolution": 0}, r"dataset.resolution=0 must be an integer >= 1"),
    ({"n_train": -5}, r"dataset.n_train=-5 must be an integer >= 1 or null"),
    ({"n_train": 55_000, "n_val": 10_000}, "exceed the 60,000 training images"),
])
def test_bad_settings_name_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(DatasetUnavailableError, match=message):
        FashionMnist(**kwargs)


@pytest.mark.skipif(not DEBIAN.is_dir(), reason=f"{DEBIAN} absent: apt-get install dataset-fashion-mnist")
def test_the_debian_release_loads_with_the_published_sizes() -> None:
    splits = FashionMnist(resolution=16, n_train=5000, n_val=5000).splits
    assert (len(splits.train.y), len(splits.val.y), len(splits.test.y)) == (5000, 5000, 10_000)
    assert np.bincount(splits.test.y.numpy()).tolist() == [1000] * 10  # the official test set is balanced
    assert splits.input_shape == (1, 16, 16)


def test_a_pipeline_run_on_fashion_mnist_shrinks_trains_a_supernet_and_logs_the_dataset(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from pipeline.run import run
    from tests.conftest import compose_cfg

    root = tmp_path / "release"
    root.mkdir()
    fake_release(root, n_train=300, n_test=60)
    cfg = compose_cfg("dataset=fashion_mnist", f"dataset.root={root}", "dataset.resolution=8", "dataset.n_val=60",
                      "space.C=4", "space.N=1", "evaluator.epochs=1", "shrink.budget=20", "shrink.sample.n_samples=10",
                      "shrink.explore.batch_size=5", "supernet.train.epochs=1", "supernet.search.population=4",
                      "supernet.search.generations=1", "supernet.search.eval_archs=4", "executor.workers=1",
                      "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    result = run(cfg, tmp_path / "run")
    parent = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(result.run_id)
    assert parent.data.tags["dataset"] == "fashion_mnist"
    assert "supernet/images_per_s" in parent.data.metrics and "search/best_subnet_val_acc" in parent.data.metrics
    [logged] = parent.inputs.dataset_inputs
    assert logged.dataset.name == "fashion_mnist" and str(root.resolve()) in logged.dataset.source
    assert [t.value for t in logged.tags if t.key == "mlflow.data.context"] == ["training"]
