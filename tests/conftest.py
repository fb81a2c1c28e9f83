"""Shared fixtures: config composition, the shared NB201 data, a toy benchmark table."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import settings
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = Path(os.environ.get("NAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
# A guard against a hung child process only, never a speed check: a busy machine may take many times the idle
# time, and speed goals live in benchmarks (experiments/).
HANG_GUARD_S = 1800

# Property tests draw the same examples on every machine and run (no example database, no wall-clock deadline),
# so CI can never meet a counter-example a developer's run did not.
settings.register_profile("reproducible", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("reproducible")


def compose_cfg(*overrides: str) -> DictConfig:
    """Compose the pipeline config the way `python -m pipeline` does (as its job sees it)."""
    from pipeline.cli import compose

    return compose("config", list(overrides), hydra_node=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests when CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def shared_file(name: str) -> Path:
    """Return a file of ../shared/data or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} absent (set NAS_SHARED_DATA to the folder holding {name})")
    return path


@pytest.fixture(scope="session", autouse=True)
def _stores_from_a_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give each new SQLite MLflow store of this process the schema made once (MLflow's migrations cost ~1.7 s a store).

    Only this process's stores: the tests that start ``python -m pipeline`` still create theirs through the
    migrations, as a user's first run does.
    """
    import sqlite3

    from mlflow.store.db import utils
    from mlflow.tracking import MlflowClient

    template = tmp_path_factory.mktemp("mlflow_template") / "mlflow.db"
    MlflowClient(f"sqlite:///{template}").search_experiments()
    migrate = utils._initialize_tables

    def initialize(engine: Any) -> None:
        if engine.url.get_backend_name() != "sqlite" or not engine.url.database:
            return migrate(engine)
        engine.dispose()  # the copy writes the file through its own connection
        with sqlite3.connect(template) as source, sqlite3.connect(engine.url.database) as target:
            source.backup(target)

    utils._initialize_tables = initialize
    yield
    utils._initialize_tables = migrate


@pytest.fixture(scope="session")
def nb201_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convert the shared NB201 CSV exports into one benchmark table."""
    from pipeline.convert_nb201 import convert

    sources = [shared_file(f"nasbench201_{d}.csv") for d in ("cifar10", "cifar100", "ImageNet16-120")]
    out = tmp_path_factory.mktemp("nb201") / "nb201.csv"
    convert(sources, out)
    return out


@pytest.fixture(scope="session")
def toy_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train every toy arch briefly on digits and write the results as a benchmark table."""
    from pipeline.artifacts import write_rows
    from pipeline.datasets import Digits
    from pipeline.evaluators.train import TrainEvaluator
    from spaces.toy import ToySpace

    space = ToySpace()
    evaluator = TrainEvaluator(space, Digits(), seed=0, epochs=1)
    archs = sorted(space.sample_unique(space.size(), __import__("numpy").random.default_rng(0)))
    rows = [{"arch": space.to_str(a), "dataset": "digits", **evaluator.evaluate(a)} for a in archs]
    out = tmp_path_factory.mktemp("toy") / "toy.csv"
    write_rows(out, rows)
    return out


@contextlib.contextmanager
def lock_held_elsewhere(lock: Path) -> Iterator[int]:
    """Hold ``lock`` (pipeline/locks.py) in another process for the block; yield that process's pid."""
    code = ("import time; from pathlib import Path; from pipeline.locks import exclusive\n"
            f"with exclusive(Path({str(lock)!r}), 'x'):\n print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
