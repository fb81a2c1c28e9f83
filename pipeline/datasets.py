"""Datasets for the ``train`` evaluator: in-memory tensors split into train / val / test."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import DatasetUnavailableError


@dataclass(frozen=True)
class Split:
    """Images (N, C, H, W) float32 and integer labels (N,)."""

    x: torch.Tensor
    y: torch.Tensor


@dataclass(frozen=True)
class Splits:
    """Train, validation and test splits plus the shapes a model needs."""

    train: Split
    val: Split
    test: Split
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Return the (C, H, W) shape of one image."""
        return tuple(self.train.x.shape[1:])


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale every split by the train split's per-channel mean and std."""
    axes = (0, 2, 3)
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True) + 1e-8
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def _split(x: np.ndarray, y: np.ndarray) -> Split:
    """Wrap numpy arrays as a torch split."""
    return Split(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)))


class Dataset:
    """A named dataset; ``splits`` loads it once, lazily."""

    name: str = "dataset"

    @cached_property
    def splits(self) -> Splits:
        """Load and return the splits (cached)."""
        return self.load()

    def load(self) -> Splits:
        """Load the splits from their source."""
        raise DatasetUnavailableError(
            f"dataset {self.name!r} has no training data here; use evaluator=benchmark with it, "
            "or dataset=digits / cifar10 / cifar100 for training"
        )

    def check(self) -> None:
        """Raise DatasetUnavailableError now if loading is bound to fail (cheap: no data is read)."""
        if type(self).load is Dataset.load:
            self.load()

    def settings(self) -> dict[str, Any]:
        """Return what fixes the images a model sees (name, split, size), not where the files lie."""
        where = ("root", "download", "splits")
        return {"name": self.name, **{k: v for k, v in sorted(vars(self).items()) if not k.startswith("_") and k not in where}}


class Digits(Dataset):
    """scikit-learn's 8x8 digits (1,797 images, ships with scikit-learn), stratified splits."""

    name = "digits"

    def __init__(self, val_fraction: float = 0.2, test_fraction: float = 0.2, split_seed: int = 0,
                 size: int = 8, channels: int = 1) -> None:
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed
        # size/channels reshape the images for networks built for CIFAR-shaped input (3x32x32).
        self.size, self.channels = size, channels

    def load(self) -> Splits:
        """Split digits into stratified train / val / test."""
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).reshape(-1, 1, 8, 8)
        if self.size != 8:
            x = torch.nn.functional.interpolate(torch.from_numpy(x), size=self.size, mode="bilinear",
                                                align_corners=False).numpy()
        x = np.repeat(x, self.channels, axis=1)
        rest_x, test_x, rest_y, test_y = train_test_split(
            x, y, test_size=self.test_fraction, stratify=y, random_state=self.split_seed
        )
        val_share = self.val_fraction / (1.0 - self.test_fraction)
        train_x, val_x, train_y, val_y = train_test_split(
            rest_x, rest_y, test_size=val_share, stratify=rest_y, random_state=self.split_seed
        )
        train_x, val_x, test_x = _standardise(train_x, val_x, test_x)
        return Splits(_split(train_x, train_y), _split(val_x, val_y), _split(test_x, test_y), 10)


def torchvision_command(torch_version: str | None = None) -> str:
    """Return the pip command that installs the torchvision release matching the installed torch.

    An unpinned ``pip install torchvision`` pulls the newest release, which requires the newest
    torch and replaces a CPU wheel with a CUDA build; the pairing is fixed: torch 2.N ships with
    torchvision 0.(N+15), and builds with a local tag (``+cpu``, ``+cu126``) live on PyTorch's index.
    """
    if torch_version is None:
        import torch

        torch_version = torch.__version__
    release, _, local = str(torch_version).partition("+")
    parts = release.split(".")
    if len(parts) < 2 or parts[0] != "2" or not parts[1].isdigit():
        return "pip install torchvision  (pick the release matching your torch: pytorch.org/get-started)"
    patch = parts[2] if len(parts) > 2 and parts[2].isdigit() else "0"
    command = f"pip install torchvision==0.{int(parts[1]) + 15}.{patch}"
    return f"{command} --index-url https://download.pytorch.org/whl/{local}" if local else command


class Cifar(Dataset):
    """CIFAR-10 / CIFAR-100 through torchvision (downloaded to ``root``); val split from train."""

    def __init__(self, name: str = "cifar10", root: str = "data", download: bool = True,
                 val_fraction: float = 0.5, split_seed: int = 0) -> None:
        if name not in ("cifar10", "cifar100"):
            raise DatasetUnavailableError(f"Cifar: name {name!r} is not one of cifar10, cifar100")
        self.name, self.root, self.download = name, root, download
        self.val_fraction, self.split_seed = val_fraction, split_seed

    def load(self) -> Splits:
        """Read the official train/test sets; NB201 holds out half of train as validation."""
        train_x, train_y, test_x, test_y = self._read()
        order = np.random.default_rng(self.split_seed).permutation(len(train_y))
        n_val = int(round(self.val_fraction * len(order)))
        val_idx, train_idx = order[:n_val], order[n_val:]
        tx, vx, sx = _standardise(train_x[train_idx], train_x[val_idx], test_x)
        classes = 10 if self.name == "cifar10" else 100
        return Splits(_split(tx, train_y[train_idx]), _split(vx, train_y[val_idx]), _split(sx, test_y), classes)

    def check(self) -> None:
        """Raise now when torchvision is unusable (the images themselves are fetched on first use)."""
        self._torchvision()

    def _torchvision(self) -> Any:
        """Return torchvision's datasets module, or raise naming the matching install command."""
        try:
            from torchvision import datasets
        except Exception as err:  # torchvision missing or built for another torch
            reason = " ".join(str(err).split())[:160]
            raise DatasetUnavailableError(
                f"dataset {self.name!r} needs a torchvision built for your torch ({reason}); run: "
                f"{torchvision_command()}  (or use dataset=digits)"
            ) from None
        return datasets

    def _read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return (train_x, train_y, test_x, test_y) as NCHW floats in [0, 1]."""
        datasets = self._torchvision()
        cls = datasets.CIFAR10 if self.name == "cifar10" else datasets.CIFAR100
        root = Path(self.root).expanduser()
        try:
            train, test = (cls(str(root), train=t, download=self.download) for t in (True, False))
        except Exception as err:  # offline download or missing files
            raise DatasetUnavailableError(
                f"dataset {self.name!r} could not be loaded from {root} ({err}); go online once with "
                f"dataset.download=true, or place the official archive under {root}"
            ) from None
        as_x = lambda d: np.asarray(d.data, dtype=np.float32).transpose(0, 3, 1, 2) / 255.0  # noqa: E731
        return as_x(train), np.asarray(train.targets), as_x(test), np.asarray(test.targets)


FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_INSTALL = "apt-get install dataset-fashion-mnist"  # Debian's package of the original idx files


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one gzipped idx file (the MNIST format): a big-endian header, then uint8 values."""
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise DatasetUnavailableError(f"{path} is not a readable gzipped idx file ({err}); reinstall it: "
                                      f"{FASHION_INSTALL}") from None
    dims = magic & 0xFF
    header = np.frombuffer(data, ">i4", count=1 + dims) if len(data) >= 4 * (1 + dims) else np.array([0])
    if int(header[0]) != magic or len(data) != 4 * (1 + dims) + int(np.prod(header[1:])):
        raise DatasetUnavailableError(f"{path} is not an idx file of magic {magic} (read {int(header[0])}) "
                                      f"or is truncated; reinstall it: {FASHION_INSTALL}")
    return np.frombuffer(data, np.uint8, offset=4 * (1 + dims)).reshape(tuple(int(d) for d in header[1:]))


class FashionMnist(Dataset):
    """Fashion-MNIST (70,000 28x28 grey images, 10 classes) from the original idx files.

    Validation is a fixed, stratified hold-out of the official training set; test is the official
    test set. ``resolution`` resizes (antialiased bilinear); ``n_*`` take fixed subsets (null:
    all), so a CPU protocol can train on fewer images than a GPU one.
    """

    name = "fashion_mnist"

    def __init__(self, root: str = "/usr/share/datasets/fashion-mnist", resolution: int = 28, n_train: int | None = None,
                 n_val: int = 10_000, n_test: int | None = None, split_seed: int = 0, channels: int = 1) -> None:
        for key, value in (("resolution", resolution), ("n_val", n_val), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DatasetUnavailableError(f"dataset.{key}={value!r} must be an integer >= 1")
        for key, value in (("n_train", n_train), ("n_test", n_test)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise DatasetUnavailableError(f"dataset.{key}={value!r} must be an integer >= 1 or null (all)")
        if n_val + (n_train or 0) > 60_000:
            raise DatasetUnavailableError(f"dataset.n_train={n_train} + dataset.n_val={n_val} exceed the 60,000 "
                                          "training images of Fashion-MNIST")
        self.root, self.resolution, self.channels = Path(str(root)).expanduser(), resolution, channels
        self.n_train, self.n_val, self.n_test, self.split_seed = n_train, n_val, n_test, split_seed

    def files(self) -> list[Path]:
        """Return the four idx files this dataset reads."""
        return [self.root / name for pair in FASHION_FILES.values() for name in pair]

    def check(self) -> None:
        """Raise now when an idx file is missing (cheap: nothing is read)."""
        missing = [f.name for f in self.files() if not f.is_file()]
        if missing:
            raise DatasetUnavailableError(
                f"dataset 'fashion_mnist' needs the Fashion-MNIST idx files in dataset.root={self.root} "
                f"({', '.join(missing)} missing); run: {FASHION_INSTALL}  (Debian/Ubuntu, as root), "
                "or set dataset.root=DIR holding the four idx .gz files")

    def load(self) -> Splits:
        """Read the idx files, hold out a stratified validation set, resize and standardise."""
        self.check()
        images, labels = FASHION_FILES["train"]
        train_x, train_y = read_idx(self.root / images, 2051), read_idx(self.root / labels, 2049)
        images, labels = FASHION_FILES["test"]
        test_x, test_y = read_idx(self.root / images, 2051), read_idx(self.root / labels, 2049)
        val_idx, rest = _subset(train_y, np.arange(len(train_y)), self.n_val, self.split_seed)
        train_idx = _subset(train_y, rest, self.n_train, self.split_seed)[0]
        test_idx = _subset(test_y, np.arange(len(test_y)), self.n_test, self.split_seed)[0]
        tx, vx, sx = _standardise(*(self._images(x) for x in (train_x[train_idx], train_x[val_idx], test_x[test_idx])))
        return Splits(_split(tx, train_y[train_idx]), _split(vx, train_y[val_idx]), _split(sx, test_y[test_idx]), 10)

    def _images(self, raw: np.ndarray) -> np.ndarray:
        """Return NCHW floats in [0, 1] at the configured resolution and channel count."""
        x = torch.from_numpy(raw.astype(np.float32) / 255.0).unsqueeze(1)
        if self.resolution != x.shape[-1]:
            x = torch.nn.functional.interpolate(x, size=self.resolution, mode="bilinear", align_corners=False,
                                                antialias=True)
        return np.repeat(x.numpy(), self.channels, axis=1)


def _subset(labels: np.ndarray, index: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``index`` into ``n`` stratified picks and the rest, both sorted (None or n >= all: everything)."""
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(index):
        return index, index[:0]
    chosen, rest = train_test_split(index, train_size=n, stratify=labels[index], random_state=seed)
    return np.sort(chosen), np.sort(rest)


class BenchmarkOnly(Dataset):
    """A dataset known only through benchmark tables here (e.g. ImageNet16-120)."""

    def __init__(self, name: str) -> None:
        self.name = name
