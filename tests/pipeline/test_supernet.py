"""SPOS supernet on digits (CPU): training, checkpoint resume, inherited-weight evaluation, search, MLflow."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config.stages import SubnetSearchCfg, SupernetCfg
from pipeline.datasets import Digits
from pipeline.errors import ConfigError
from pipeline.supernet.models import build_supernet
from pipeline.supernet.search import evolve
from pipeline.supernet.train import CHECKPOINT, load_weights, subnet_accuracy, train_supernet
from spaces.mobilenet import MobileNetSpace
from spaces.nb201 import NB201Space
from tests.conftest import compose_cfg

SPACE = NB201Space(C=4, N=1)
CFG = SupernetCfg(epochs=3, batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-4)


@pytest.fixture(scope="module")
def splits():
    return Digits().splits


def fresh(splits) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_supernet(SPACE, splits.input_shape, splits.num_classes)


class Interrupt(Exception):
    """Stands in for a kill after an epoch's checkpoint."""


def test_training_resumes_after_an_interruption_to_the_same_weights(tmp_path: Path, splits) -> None:
    whole = fresh(splits)
    history = train_supernet(whole, SPACE, SPACE, splits.train, CFG, tmp_path / "whole", seed=7)
    assert [r["epoch"] for r in history] == [1.0, 2.0, 3.0] and history[-1]["train_loss"] < history[0]["train_loss"]

    def die_after_first(so_far: list) -> None:
        if len(so_far) == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_supernet(fresh(splits), SPACE, SPACE, splits.train, CFG, tmp_path / "cut", seed=7, on_epoch=die_after_first)
    resumed = fresh(splits)
    again = train_supernet(resumed, SPACE, SPACE, splits.train, CFG, tmp_path / "cut", seed=7)
    assert [r["train_loss"] for r in again] == [r["train_loss"] for r in history]
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_diverging_supernet_stops_in_one_line_naming_the_learning_rate(tmp_path: Path, splits) -> None:
    from pipeline.errors import ConfigError

    wild = SupernetCfg(epochs=1, batch_size=64, lr=1e30, momentum=0.9, weight_decay=0.0, grad_clip=1e30)
    with pytest.raises(ConfigError, match=r"training loss became (nan|inf) at epoch 1, step \d+ \(supernet.train.lr=1e\+30\)"):
        train_supernet(fresh(splits), SPACE, SPACE, splits.train, wild, tmp_path, seed=7)
    assert not (tmp_path / CHECKPOINT).exists()  # nothing NaN-trained is kept for a search to read


def test_a_checkpoint_of_a_shorter_schedule_is_not_continued(tmp_path: Path, splits) -> None:
    from dataclasses import replace

    def die_after_first(so_far: list) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):  # a 3-epoch training killed after its first epoch...
        train_supernet(fresh(splits), SPACE, SPACE, splits.train, CFG, tmp_path / "cut", seed=7, on_epoch=die_after_first)
    longer = replace(CFG, epochs=4)  # ...resumed as a 4-epoch one: a new cosine schedule from epoch 1
    again = train_supernet(fresh(splits), SPACE, SPACE, splits.train, longer, tmp_path / "cut", seed=7)
    clean = train_supernet(fresh(splits), SPACE, SPACE, splits.train, longer, tmp_path / "clean", seed=7)
    assert [r["lr"] for r in again] == [r["lr"] for r in clean] and len(again) == 4


def test_inherited_weights_score_subnets_reproducibly(tmp_path: Path, splits) -> None:
    model = fresh(splits)
    cfg = SupernetCfg(epochs=10, batch_size=64, lr=0.05, momentum=0.9, weight_decay=1e-4)
    train_supernet(model, SPACE, SPACE, splits.train, cfg, tmp_path, seed=7)
    loaded = load_weights(fresh(splits), tmp_path)
    conv = SPACE.from_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    empty = SPACE.from_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    device = torch.device("cpu")
    first = subnet_accuracy(loaded, SPACE, conv, splits.train, splits.val, 4, 128, device)
    assert first == subnet_accuracy(loaded, SPACE, conv, splits.train, splits.val, 4, 128, device)
    # A trained conv path (57.5% when written) beats the all-zero cell, which predicts one class.
    assert first > 40.0 > 15.0 >= subnet_accuracy(loaded, SPACE, empty, splits.train, splits.val, 4, 128, device)


def test_mobilenet_supernet_trains_on_ball_pockets(tmp_path: Path, splits) -> None:
    from spaces.shrunk import Pocket, ShrunkSpace

    space = MobileNetSpace(0.25)
    seed = space.to_str(space.sample(np.random.default_rng(0)))
    balls = ShrunkSpace(space, [Pocket(0, seed, None, 2, ((seed, None),), region="ball")])
    model = build_supernet(space, splits.input_shape, splits.num_classes)
    cfg = SupernetCfg(epochs=1, batch_size=128, lr=0.05, momentum=0.9, weight_decay=0.0)
    history = train_supernet(model, space, balls, splits.train, cfg, tmp_path, seed=0)
    assert np.isfinite(history[0]["train_loss"]) and (tmp_path / CHECKPOINT).exists()


def test_evolution_finds_the_optimum_of_a_known_fitness() -> None:
    space = NB201Space()
    fitness = lambda a: float(sum(op == "nor_conv_3x3" for op in a))  # noqa: E731
    cfg = SubnetSearchCfg(population=20, generations=8, parents=5, mutation_prob=0.3)
    best, value, history = evolve(space, space.sample, lambda a: True, space.size(), fitness, cfg,
                                  np.random.default_rng(0))
    assert value == 6.0 and best == ("nor_conv_3x3",) * 6
    assert history[-1]["best"] >= history[0]["best"] and history[-1]["evaluated"] <= 20 * 9


def test_evolution_stays_inside_a_small_region_and_searches_it_exhaustively() -> None:
    space = NB201Space()
    rng = np.random.default_rng(1)
    region = {space.to_str(a) for a in space.sample_unique(12, rng)}
    draws = sorted(region)
    seen = []

    def fitness(arch):
        seen.append(space.to_str(arch))
        return float(len(space.to_str(arch)))

    best, _, _ = evolve(space, lambda r: space.from_str(draws[int(r.integers(len(draws)))]),
                        lambda a: space.to_str(a) in region, len(region), fitness,
                        SubnetSearchCfg(population=4, generations=4, parents=2, mutation_prob=0.3), rng)
    assert set(seen) == region and space.to_str(best) == max(region, key=lambda s: (len(s), s))


OVERRIDES = ("shrink.budget=30", "shrink.sample.n_samples=20", "progress=false", "supernet.train.epochs=2",
             "supernet.search.eval_archs=5",
             "supernet.search.population=4", "supernet.search.generations=1", "space.C=4", "evaluator.epochs=1")


def test_pipeline_trains_ranks_and_logs_the_supernet(tmp_path: Path) -> None:
    import mlflow.pytorch
    from hydra.utils import instantiate as cfg_dataset_instantiate
    from mlflow.tracking import MlflowClient

    from pipeline.supernet.train import path_accuracy

    def cfg_dataset(cfg):
        return cfg_dataset_instantiate(cfg.dataset)

    from pipeline.run import run

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = compose_cfg(*OVERRIDES, f"tracking.uri={uri}")
    result = run(cfg, tmp_path / "run")
    client = MlflowClient(uri)
    metrics = client.get_run(result.run_id).data.metrics
    assert "search/shrunk_kendall_tau" in metrics and "search/best_supernet_acc" in metrics
    # The per-epoch curve and the stage's summary figures have different names: no two values at one step.
    assert [m.step for m in client.get_metric_history(result.run_id, "supernet/epoch/train_loss")] == [1, 2]
    assert [m.step for m in client.get_metric_history(result.run_id, "supernet/train_loss")] == [0]
    assert "supernet/checkpoint.pt" in {a.path for a in client.list_artifacts(result.run_id, "supernet")}
    # The best subnet is a logged model that loads with mlflow.pytorch and reproduces the search's accuracy.
    mlflow.set_tracking_uri(uri)
    model = mlflow.pytorch.load_model(f"runs:/{result.run_id}/best_subnet")
    splits = cfg_dataset(cfg).splits
    assert path_accuracy(model, None, splits.val, torch.device("cpu")) == metrics["search/best_subnet_val_acc"]
    assert client.get_run(result.run_id).outputs.model_outputs
    assert (tmp_path / "run" / "search" / "search.json").exists()
    saved = torch.load(tmp_path / "run" / "search" / "best_subnet.pt", weights_only=False)
    space = NB201Space(C=4, N=1)
    net = space.build_model(space.from_str(saved["arch"]), tuple(saved["input_shape"]), saved["num_classes"])
    net.load_state_dict(saved["state_dict"])
    # Retrained from scratch with torch's global generator elsewhere: the same initial weights and curve.
    losses = lambda: [row.split(",")[1] for row in (tmp_path / "run" / "supernet" / "curves.csv").read_text().splitlines()]  # noqa: E731
    first = losses()
    for stage_dir in ("supernet", "search"):
        shutil.rmtree(tmp_path / "run" / stage_dir)
    torch.manual_seed(12345)
    run(cfg, tmp_path / "run")
    assert losses() == first
    # Resumed with a longer schedule: the finished supernet is set aside and trained again, and the search follows.
    longer = compose_cfg(*[o for o in OVERRIDES if not o.startswith("supernet.train.epochs")], "supernet.train.epochs=3",
                         f"tracking.uri={uri}")
    run(longer, tmp_path / "run")
    assert len(losses()) == 4 and (tmp_path / "run" / "supernet.stale-1" / "curves.csv").is_file()
    assert (tmp_path / "run" / "search.stale-1").is_dir() and (tmp_path / "run" / "search" / "search.json").is_file()


@pytest.mark.parametrize("overrides, message", [
    (("space=toy", "supernet.enabled=true"), "has no supernet"),
    (("+supernet.sample_frm=full",), "supernet.sample_frm is not a setting of the supernet"),
    (("supernet.enabled=maybe",), "supernet.enabled=.maybe. is not one of true, false, auto"),
    (("supernet.train.sample_from=bogus",), "supernet.train.sample_from='bogus' is not one of shrunk, full"),
    (("supernet.train.epochs=0",), "supernet.train.epochs=0 must be an integer >= 1"),
])
def test_bad_supernet_settings_are_named(tmp_path: Path, overrides: tuple, message: str) -> None:
    from pipeline.run import run

    cfg = compose_cfg(*overrides, "progress=false", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(ConfigError, match=message):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "round_000").exists()  # refused before any evaluation


def _ddp_worker(rank: int, port: int, folder: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    splits = Digits().splits
    model = fresh(splits)
    cfg = SupernetCfg(epochs=1, batch_size=32, lr=0.05, momentum=0.9, weight_decay=0.0)
    train_supernet(model, SPACE, SPACE, splits.train, cfg, Path(folder), seed=3)
    torch.save(dict(model.named_parameters()), Path(folder) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_ranks_stay_in_sync_and_only_rank_zero_writes(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_ddp_worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    # Gradients are all-reduced, so weights agree (BN running statistics stay per rank, and are
    # recalibrated before any subnet is scored).
    assert all(torch.allclose(a[k], b[k]) for k in a)
    assert (tmp_path / CHECKPOINT).exists()


@pytest.mark.gpu
def test_cuda_bf16_channels_last_training(tmp_path: Path, splits) -> None:
    model = fresh(splits)
    cfg = SupernetCfg(epochs=1, batch_size=64, lr=0.05, momentum=0.9, weight_decay=0.0, device="cuda")
    history = train_supernet(model, SPACE, SPACE, splits.train, cfg, tmp_path, seed=0)
    assert np.isfinite(history[0]["train_loss"]) and next(model.parameters()).is_cuda
    acc = subnet_accuracy(model, SPACE, SPACE.sample(np.random.default_rng(0)), splits.train, splits.val, 2, 128,
                          torch.device("cuda"))
    assert 0.0 <= acc <= 100.0


@pytest.mark.slow
def test_torchrun_trains_a_finished_runs_supernet_then_resume_searches(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pipeline.run import run

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    base = ("shrink.budget=30", "shrink.sample.n_samples=20", "progress=false", f"tracking.uri={uri}", "space.C=4",
            "evaluator.epochs=1")
    run(compose_cfg(*base, "supernet=none"), tmp_path / "run")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}"]
    done = subprocess.run([*torchrun, "-m", "pipeline.supernet", str(tmp_path / "run"), "supernet.train.epochs=2"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "supernet" / CHECKPOINT).exists()
    result = run(compose_cfg(*base, "supernet.train.epochs=2", "supernet.search.eval_archs=5", "supernet.search.population=4",
                             "supernet.search.generations=1"), tmp_path / "run")
    assert (result.run_dir / "search" / "search.json").exists()
    assert not (result.run_dir / "supernet.stale-1").exists()  # torchrun's supernet was reused, not retrained
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    # The supernet torchrun trained is reused by the resume (not trained again) and logged on the run.
    assert [m.step for m in client.get_metric_history(result.run_id, "supernet/epoch/train_loss")] == [1, 2]
    assert "supernet/best_subnet_val_acc" not in client.get_run(result.run_id).data.metrics
    assert "search/best_subnet_val_acc" in client.get_run(result.run_id).data.metrics


@pytest.mark.parametrize("space", [NB201Space(C=4, N=2), MobileNetSpace(0.25)], ids=["nb201", "mobilenet"])
def test_extracted_subnet_computes_exactly_the_supernet_path(space) -> None:
    from pipeline.supernet.models import extract_subnet

    torch.manual_seed(0)
    supernet = build_supernet(space, (1, 16, 16), 10)
    for module in supernet.modules():  # non-trivial BN statistics, so eval mode is a real check
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 1.5)
    arch = space.sample(np.random.default_rng(3))
    subnet = extract_subnet(supernet, space, arch, (1, 16, 16), 10).eval()
    x = torch.randn(4, 1, 16, 16)
    assert torch.allclose(supernet.eval()(x, space.codes([arch])[0]), subnet(x), atol=1e-5)


@pytest.mark.slow
def test_the_readme_torchrun_recipe_followed_literally_ends_with_a_searched_logged_supernet(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import HANG_GUARD_S, ROOT

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=HANG_GUARD_S)

    first = cli("-m", "pipeline", "supernet=none", "shrink.budget=30", "shrink.sample.n_samples=10", "space.C=4",
                "space.N=1", "evaluator.epochs=1", "progress=false", "executor.workers=1", "hydra.run.dir=run")
    assert first.returncode == 0, first.stderr[-2000:]
    trained = cli("-m", "torch.distributed.run", "--nproc_per_node=1", f"--master_port={free_port()}",
                  "-m", "pipeline.supernet", "run", "supernet.train.epochs=1")
    assert trained.returncode == 0 and "finish with: python -m pipeline resume=run" in trained.stdout, trained.stderr
    resumed = cli("-m", "pipeline", "resume=run")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "best subnet found: |" in resumed.stdout and "supernet epoch" not in resumed.stdout  # searched, not retrained
