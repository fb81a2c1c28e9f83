"""Stage ``search``: rank subnets with inherited supernet weights, and search the shrunk space.

Ranking quality: up to ``eval_archs`` members of the shrunk space and as many uniform draws of
the full space are scored by the supernet (val accuracy after BN recalibration) and compared
with a reference: the ground truth (test accuracy) when the run has one, else the run's own
evaluator (scores already recorded, the rest evaluated now). Kendall's tau and Spearman's rho
per set go to MLflow. Evolution (SPOS-style) then looks for the best subnet inside the shrunk
space; its reference accuracy is reported and its stand-alone network, carrying the supernet's
weights (BN recalibrated), is saved as ``best_subnet.pt`` for fine-tuning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline import pictures
from pipeline.config.stages import SubnetSearchCfg
from pipeline.context import StageContext
from pipeline.evaluators.train import pick_device
from pipeline.stages.supernet import shrunk_space
from pipeline.supernet.models import build_supernet, extract_subnet
from pipeline.supernet.search import evolve, rank_correlations
from pipeline.supernet.train import load_weights, path_accuracy, recalibrate_bn, subnet_accuracy
from pipeline.threads import resolve_count, torch_threads, usable_cpus
from spaces.base import Arch
from spaces.shrunk import LIST_LIMIT

NEEDS, MAKES = ("shrunk_space", "checkpoint"), ("ranking", "search", "subnet")


Cfg = SubnetSearchCfg  # declared in pipeline/config/stages.py (light: read before composing)


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Rank both sets, run the evolution, save ``ranking.csv`` and ``search.json``."""
    with torch_threads(resolve_count("supernet.search.threads", cfg.threads, usable_cpus())):
        return _search(ctx, cfg)


def _search(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Rank and search with the current thread setting."""
    space, shrunk, splits = ctx.space, shrunk_space(ctx), ctx.dataset.splits
    device = pick_device(cfg.device)
    model = load_weights(build_supernet(space, splits.input_shape, splits.num_classes),
                         ctx.final_path("checkpoint").parent)
    model.to(device)
    cache: dict[str, float] = {}

    def estimate(arch: Arch) -> float:
        key = space.to_str(arch)
        if key not in cache:
            cache[key] = subnet_accuracy(model, space, arch, splits.train, splits.val, cfg.bn_batches,
                                         cfg.calib_batch, device)
        return cache[key]

    members = _members(shrunk, cfg.eval_archs, ctx.rng)
    sets = {"shrunk": members, "random": [space.to_str(a) for a in space.sample_unique(len(members), ctx.rng)]}
    reference, source = _reference(ctx)
    rows, metrics = [], {"reference_is_truth": float(ctx.truth is not None)}
    for name, archs in sets.items():
        pairs = [(a, estimate(space.from_str(a)), reference(a)) for a in archs]
        pairs = [p for p in pairs if p[2] is not None]
        rows += [{"arch": a, "set": name, "supernet_acc": e, "reference": r} for a, e, r in pairs]
        corr = rank_correlations([p[1] for p in pairs], [p[2] for p in pairs])
        metrics.update({f"{name}_{k}": v for k, v in corr.items()})
        metrics[f"{name}_ranked"] = float(len(pairs))
    ctx.save("ranking", rows)
    pictures.supernet_scatter(ctx.folder / "ranking.png", rows, source)
    best, fitness, history = evolve(space, shrunk.sample, lambda a: a in shrunk, shrunk.size(), estimate,
                                    cfg, ctx.rng)
    found = {"arch": space.to_str(best), "supernet_acc": fitness, "reference": reference(space.to_str(best)),
             "reference_source": source, "subnets_scored": len(cache), "history": history}
    ctx.save("search", found)
    # The supernet's BN statistics belong to the last subnet scored: recalibrate for the winner.
    recalibrate_bn(model, space.codes([best])[0], splits.train, cfg.bn_batches, cfg.calib_batch, device)
    subnet = extract_subnet(model.cpu(), space, best, splits.input_shape, splits.num_classes)
    ctx.save("subnet", {"arch": found["arch"], "space": space.config(), "input_shape": list(splits.input_shape),
                        "num_classes": splits.num_classes, "state_dict": subnet.state_dict()})
    # What the logged model reproduces: the stand-alone network's own val accuracy.
    metrics.update({"best_supernet_acc": fitness, "subnets_scored": float(len(cache)),
                    "best_subnet_val_acc": path_accuracy(subnet, None, splits.val, torch.device("cpu"))})
    if found["reference"] is not None:
        metrics["best_reference"] = float(found["reference"])
    return metrics


def _members(shrunk: Any, n: int, rng: np.random.Generator) -> list[str]:
    """Return up to ``n`` distinct members of the shrunk space, drawn uniformly."""
    if shrunk.size() <= LIST_LIMIT:
        listed = shrunk.arch_strs()
        pick = np.sort(rng.choice(len(listed), min(n, len(listed)), replace=False))
        return [listed[i] for i in pick]
    drawn = dict.fromkeys(shrunk.base.to_str(shrunk.sample(rng)) for _ in range(4 * n))
    return list(drawn)[:n]


def _reference(ctx: StageContext) -> tuple[Any, str]:
    """Return (arch string -> reference accuracy or None, its description)."""
    if ctx.truth is not None:
        return ctx.truth.get, "ground truth test accuracy"
    evaluated = ctx.evaluated()
    metric = ctx.evaluator.metric

    def by_evaluator(arch: str) -> float | None:
        if arch not in evaluated:
            evaluated[arch] = ctx.evaluator.evaluate(ctx.space.from_str(arch))
            evaluated[arch]["score"] = evaluated[arch][metric]
        value = evaluated[arch].get(metric)
        return None if value is None or not np.isfinite(value) else float(value)

    return by_evaluator, f"evaluator {ctx.evaluator.name} ({metric})"
