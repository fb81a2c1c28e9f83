"""The ``train`` evaluator: a short, real, seeded training run of the arch's network."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline import interrupts
from pipeline.datasets import Dataset, Split
from pipeline.evaluators.base import Evaluator
from pipeline.evaluators.table_cache import TableCache
from spaces.base import Arch, SearchSpace
from spaces.costs import count_flops, count_params


def pick_device(device: str) -> torch.device:
    """Resolve ``auto`` to CUDA when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def arch_seed(seed: int, arch_str: str) -> int:
    """Derive a per-architecture seed from the run seed and the arch's identity string."""
    entropy = [seed, zlib.crc32(arch_str.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@torch.no_grad()
def accuracy(model: nn.Module, split: Split, device: torch.device, batch_size: int = 512) -> float:
    """Return top-1 accuracy (%) of ``model`` on ``split``."""
    model.eval()
    correct = 0
    for start in range(0, len(split.y), batch_size):
        x = split.x[start : start + batch_size].to(device)
        correct += int((model(x).argmax(1).cpu() == split.y[start : start + batch_size]).sum())
    return 100.0 * correct / max(1, len(split.y))


class TrainEvaluator(Evaluator):
    """Train each network for a few epochs (SGD, cosine schedule); search on val accuracy."""

    name = "train"
    trains_on_images = True
    metric = "val_acc"

    def __init__(self, space: SearchSpace, dataset: Dataset, seed: int = 0, epochs: int = 4,
                 batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
                 weight_decay: float = 5e-4, device: str = "auto", record_epochs: tuple[int, ...] = (),
                 table: str | None = None) -> None:
        super().__init__(space)
        self.dataset, self.seed, self.epochs, self.batch_size = dataset, seed, epochs, batch_size
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.device = pick_device(device)
        bad = [e for e in record_epochs if not 1 <= e <= epochs]
        if bad:
            raise ValueError(f"record_epochs {bad} must lie in 1..epochs={epochs}")
        self.record_epochs = tuple(sorted(record_epochs))
        # A benchmark table of this very protocol (pipeline.bench) as memory: found trainings are read, not redone.
        self.cache = None if table is None else TableCache(Path(str(table)).expanduser(), space, dataset.name,
                                                           self.record_epochs, self.protocol())

    def protocol(self) -> dict[str, dict[str, Any]]:
        """Return what fixes a training's result besides the arch and seed: space, images and optimisation."""
        train = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "momentum": self.momentum,
                 "weight_decay": self.weight_decay, "record_epochs": list(self.record_epochs)}
        config = {k: v for k, v in self.space.config().items() if k != "_target_"}
        return {"space": {"name": self.space.name, **config}, "dataset": self.dataset.settings(), "train": train}

    def evaluate(self, arch: Arch) -> dict[str, float]:
        """Return val/test accuracy, params, FLOPs and time of ``arch``: from the table when it holds them, else trained."""
        if self.cache is None:
            return self.train(arch)
        name = self.space.to_str(arch)
        found = self.cache.get(name, self.seed)
        if found is None:
            return self.cache.put(name, self.seed, self.train(arch))
        if "params" not in found:  # another member of its class was trained: the costs are this arch's own
            params, flops = self.space.costs(arch, self.dataset.splits.input_shape, self.dataset.splits.num_classes)
            found.update(params=float(params), flops=float(flops))
        return found

    def train(self, arch: Arch) -> dict[str, float]:
        """Train ``arch`` from a seeded init and report val/test accuracy, params, FLOPs and time."""
        splits = self.dataset.splits
        seed = arch_seed(self.seed, self.space.to_str(arch))
        torch.manual_seed(seed)
        model = self.space.build_model(arch, splits.input_shape, splits.num_classes).to(self.device)
        costs = {"params": float(count_params(model)), "flops": float(count_flops(model, splits.input_shape))}
        start = time.perf_counter()
        recorded: dict[str, float] = {}
        loss = self._fit(model, splits.train, torch.Generator().manual_seed(seed), recorded)
        return {
            "val_acc": accuracy(model, splits.val, self.device),
            "test_acc": accuracy(model, splits.test, self.device),
            "train_loss": loss,
            **costs,
            "train_seconds": time.perf_counter() - start,
            **recorded,
        }

    def _record(self, model: nn.Module, epoch: int, recorded: dict[str, float]) -> None:
        """Store val/test accuracy after ``epoch`` when it is a recorded epoch budget."""
        if epoch in self.record_epochs:
            splits = self.dataset.splits
            recorded[f"val_acc_e{epoch}"] = accuracy(model, splits.val, self.device)
            recorded[f"test_acc_e{epoch}"] = accuracy(model, splits.test, self.device)
            model.train()

    def _fit(self, model: nn.Module, train: Split, gen: torch.Generator, recorded: dict[str, float]) -> float:
        """Run the epochs and return the last epoch's mean training loss."""
        params = [p for p in model.parameters() if p.requires_grad]
        # A cell with only `none`/pool edges may have no trainable weight before the head.
        opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                              weight_decay=self.weight_decay, nesterov=True)
        steps = self.epochs * -(-len(train.y) // self.batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
        model.train()
        mean_loss = float("nan")
        for epoch in range(self.epochs):
            interrupts.check()  # a Ctrl-C a GC callback swallowed stops the training here
            order = torch.randperm(len(train.y), generator=gen)
            total, count = 0.0, 0
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                x, y = train.x[idx].to(self.device), train.y[idx].to(self.device)
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total, count = total + loss.item() * len(idx), count + len(idx)
            mean_loss = total / count
            self._record(model, epoch + 1, recorded)
        return mean_loss

    def tags(self) -> dict[str, str]:
        """Return evaluator and dataset names."""
        return {**super().tags(), "dataset": self.dataset.name}
