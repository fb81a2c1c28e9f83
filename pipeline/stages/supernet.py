"""Stage ``supernet``: train a single-path weight-sharing supernet on the emitted shrunk space.

Paths are drawn uniformly from the shrunk space (``sample_from=shrunk``) or, for comparison,
from the full space (``full``). Writes ``checkpoint.pt`` after every epoch (a rerun resumes from
it) and ``curves.csv`` (loss, accuracy, learning rate, images/s per epoch; logged to MLflow as
per-epoch series).
"""

from __future__ import annotations

import torch

from pipeline.config.stages import SupernetCfg
from pipeline.context import StageContext
from pipeline.errors import ConfigError
from pipeline.supernet.models import build_supernet
from pipeline.supernet.train import train_supernet
from pipeline.threads import resolve_count, torch_threads, usable_cpus
from spaces.base import CategoricalSpace
from spaces.shrunk import ShrunkSpace

NEEDS, MAKES = ("shrunk_space",), ("curves", "checkpoint")
SERIES = "curves"  # per-epoch rows the runner logs as MLflow series (step = epoch)


Cfg = SupernetCfg  # declared in pipeline/config/stages.py (light: read before composing)


def shrunk_space(ctx: StageContext) -> ShrunkSpace:
    """Return the shrunk space the emit stage wrote."""
    return ShrunkSpace.load(ctx.final_path("shrunk_space"))


def _progress(ctx: StageContext, so_far: list[dict[str, float]], epochs: int) -> None:
    """Save the curves so far and print a line every tenth of the training."""
    ctx.save("curves", so_far)
    last = so_far[-1]
    ctx.progress({"supernet_epoch": float(last["epoch"]), "supernet_train_loss": float(last["train_loss"])})
    if int(last["epoch"]) % max(1, epochs // 10) == 0 or int(last["epoch"]) == epochs:
        print(f"supernet epoch {int(last['epoch'])}/{epochs}: loss {last['train_loss']:.3f}, "
              f"train acc {last['train_acc']:.1f}%, {last['images_per_s']:.0f} img/s", flush=True)


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Train (or resume) the supernet and return its last epoch's figures."""
    with torch_threads(resolve_count("supernet.train.threads", cfg.threads, usable_cpus())):
        return _train(ctx, cfg)


def _train(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Train the supernet with the current thread setting."""
    if not isinstance(ctx.space, CategoricalSpace):
        raise ConfigError(f"no supernet for space {ctx.space.name!r}; use supernet=none")
    splits = ctx.dataset.splits
    seed = int(ctx.rng.integers(2**31))
    # The initial weights come from the run's seed, not from whatever torch's global generator
    # holds after the evaluations (which ran in other processes or not at all on a resume).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_supernet(ctx.space, splits.input_shape, splits.num_classes)
    sampler = shrunk_space(ctx) if cfg.sample_from == "shrunk" else ctx.space
    history = train_supernet(model, ctx.space, sampler, splits.train, cfg, ctx.folder, seed=seed,
                             on_epoch=lambda so_far: _progress(ctx, so_far, cfg.epochs))
    ctx.save("curves", history)
    last = history[-1]
    return {"epochs": last["epoch"], "train_loss": last["train_loss"], "train_acc": last["train_acc"],
            "images_per_s": sum(r["images_per_s"] for r in history) / len(history),
            "params": float(sum(p.numel() for p in model.parameters())), "sampled_space_size": float(sampler.size())}

