"""Single-path supernet training with per-epoch checkpoints, and subnet evaluation with inherited weights.

Every step draws one arch from a sampler (a shrunk space or the full space) and trains only its
path. The data order and the drawn archs of epoch ``e`` derive from ``(seed, e)`` alone, and a
checkpoint holds model, optimiser and schedule, so a run interrupted after any epoch resumes to
bit-identical weights. Under ``torchrun`` (WORLD_SIZE > 1) the model is wrapped in
DistributedDataParallel, every rank draws the same arch per step and trains on its shard of the
batch order, and only rank 0 writes checkpoints.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline import interrupts
from pipeline.artifacts import ARTIFACTS
from pipeline.config.stages import SupernetCfg
from pipeline.datasets import Split
from pipeline.errors import ConfigError
from pipeline.evaluators.train import pick_device
from spaces.base import Arch, CategoricalSpace

CHECKPOINT = ARTIFACTS["checkpoint"].filename


class ArchSampler(Protocol):
    """Anything that draws archs uniformly: a search space or a shrunk space."""

    def sample(self, rng: np.random.Generator) -> Arch:
        """Draw one arch."""


def world() -> tuple[int, int]:
    """Return (rank, world size) of a torchrun launch, (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _device(cfg: SupernetCfg) -> torch.device:
    """Pick the device; under torchrun each rank takes its local GPU."""
    device = pick_device(cfg.device)
    if device.type == "cuda" and world()[1] > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


def train_supernet(model: nn.Module, space: CategoricalSpace, sampler: ArchSampler, split: Split, cfg: SupernetCfg,
                   folder: Path, *, seed: int,
                   on_epoch: Callable[[list[dict[str, float]]], None] | None = None) -> list[dict[str, float]]:
    """Train ``model`` single-path for ``cfg.epochs`` (resuming from ``folder``); return per-epoch records.

    ``seed`` fixes the data order and the drawn archs of every epoch (the model's initial weights are the caller's).
    ``on_epoch`` (rank 0) receives the records so far after each epoch's checkpoint is written.
    """
    rank, size = world()
    device = _device(cfg)
    fast = device.type == "cuda"
    folder.mkdir(parents=True, exist_ok=True)
    model.to(device)
    if fast and cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    net = model
    if size > 1:
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if fast else "gloo")
        # Single-path steps leave the other candidates without gradients.
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if fast else None,
                                                  find_unused_parameters=True)
    steps = len(split.y) // (cfg.batch_size * size)
    if steps < 1:
        raise ValueError(f"supernet: batch_size={cfg.batch_size} x {size} ranks exceeds the {len(split.y)} training images")
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                nesterov=cfg.momentum > 0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * steps)
    history, start = _resume(folder / CHECKPOINT, model, optimizer, schedule, cfg.epochs)
    for epoch in range(start, cfg.epochs):
        interrupts.check()
        record = _epoch(net, space, sampler, split, cfg, seed, optimizer, schedule, epoch, steps, device)
        history.append(record)
        if rank == 0:
            _save(folder / CHECKPOINT, model, optimizer, schedule, history, cfg)
            if on_epoch is not None:
                on_epoch(history)
    return history


def _epoch(net: nn.Module, space: CategoricalSpace, sampler: ArchSampler, split: Split, cfg: SupernetCfg, seed: int,
           optimizer: torch.optim.Optimizer, schedule: Any, epoch: int, steps: int, device: torch.device) -> dict[str, float]:
    """Train one epoch; return its loss, accuracy, learning rate and throughput."""
    rank, size = world()
    order = torch.randperm(len(split.y), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    rng = np.random.default_rng([seed, epoch])  # the same archs on every rank
    fast = device.type == "cuda"
    net.train()
    loss_sum = correct = seen = 0.0
    start = time.perf_counter()
    for step in range(steps):
        rows = order[(step * size + rank) * cfg.batch_size:(step * size + rank + 1) * cfg.batch_size]
        x, y = split.x[rows].to(device, non_blocking=True), split.y[rows].to(device, non_blocking=True)
        if fast and cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        codes = space.codes([sampler.sample(rng)])[0]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast and cfg.bf16):
            logits = net(x, codes)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        if not math.isfinite(value):  # a NaN loss trains nothing and would be searched and logged as a result
            raise ConfigError(f"supernet: the training loss became {value} at epoch {epoch + 1}, step {step + 1} "
                              f"(supernet.train.lr={cfg.lr}); lower supernet.train.lr")
        loss_sum += value * len(y)
        correct += float((logits.argmax(1) == y).sum())
        seen += len(y)
    if fast:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"epoch": float(epoch + 1), "train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
            "lr": float(schedule.get_last_lr()[0]), "images_per_s": seen * size / seconds, "epoch_seconds": seconds}


def _save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
          history: list[dict[str, float]], cfg: SupernetCfg) -> None:
    """Write the checkpoint atomically (an interrupted write keeps the previous one)."""
    ARTIFACTS["checkpoint"].write(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                         "schedule": schedule.state_dict(), "history": history, "epochs": cfg.epochs})


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
            epochs: int) -> tuple[list, int]:
    """Load the last checkpoint when one exists; return (history, first epoch to train).

    A checkpoint of a schedule over another number of epochs is not continued: its cosine
    learning rate was planned for that length, so training starts over (and says so).
    """
    if not path.exists():
        return [], 0
    state = ARTIFACTS["checkpoint"].read(path)
    if state.get("epochs") != epochs:
        print(f"supernet: the checkpoint was planned for {state.get('epochs')} epochs, not {epochs}; "
              "training from the start", flush=True)
        return [], 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    return list(state["history"]), len(state["history"])


def load_weights(model: nn.Module, folder: Path) -> nn.Module:
    """Load the trained weights of ``folder``'s checkpoint into ``model``."""
    model.load_state_dict(ARTIFACTS["checkpoint"].read(folder / CHECKPOINT)["model"])
    return model


@torch.no_grad()
def recalibrate_bn(model: nn.Module, codes: np.ndarray, split: Split, batches: int, batch_size: int,
                   device: torch.device, seed: int = 0) -> None:
    """Re-estimate every batch-norm statistic on the path ``codes`` (the same batches for every subnet)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batches
    model.train()
    order = torch.randperm(len(split.y), generator=torch.Generator().manual_seed(seed))
    for b in range(min(batches, math.ceil(len(split.y) / batch_size))):
        model(split.x[order[b * batch_size:(b + 1) * batch_size]].to(device), codes)
    for norm in norms:
        norm.momentum = 0.1


@torch.no_grad()
def path_accuracy(model: nn.Module, codes: np.ndarray | None, split: Split, device: torch.device,
                  batch_size: int = 512) -> float:
    """Return top-1 accuracy (%) of the subnet ``codes`` on ``split`` (of a stand-alone network when None)."""
    model.eval()
    correct = 0
    for start in range(0, len(split.y), batch_size):
        images = split.x[start:start + batch_size].to(device)
        logits = model(images) if codes is None else model(images, codes)
        correct += int((logits.argmax(1).cpu() == split.y[start:start + batch_size]).sum())
    return 100.0 * correct / max(1, len(split.y))


def subnet_accuracy(model: nn.Module, space: CategoricalSpace, arch: Arch, train: Split, val: Split,
                    bn_batches: int, batch_size: int, device: torch.device) -> float:
    """Return the val accuracy of ``arch`` with inherited weights, after recalibrating its BN statistics."""
    codes = space.codes([arch])[0]
    recalibrate_bn(model, codes, train, bn_batches, batch_size, device)
    return path_accuracy(model, codes, val, device)
