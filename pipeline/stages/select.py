"""Stage ``select`` (baselines ``random`` and ``topk``): keep part of the evaluated uniform sample.

``random`` keeps a uniform random subset (of a uniform sample, so a uniform subset of the
space): the null baseline. ``topk`` keeps the best archs seen: random search's shrunk space.
"""

from __future__ import annotations

import numpy as np

from pipeline.config.stages import SelectCfg
from pipeline.context import StageContext
from pipeline.stages.pockets import make_pocket, save_round

NEEDS, MAKES = ("scores",), ("pockets",)


Cfg = SelectCfg  # declared in pipeline/config/stages.py (light: read before composing)


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Keep ``size`` evaluated archs by the rule and save them as one pocket."""
    scores = {arch: float(row["score"]) for arch, row in ctx.evaluated().items()}
    # Failed or over-budget archs (score -inf) are never kept.
    ranked = sorted((a for a in scores if np.isfinite(scores[a])), key=lambda a: (-scores[a], a))
    if cfg.rule == "top":
        kept = ranked[: cfg.size]
    else:
        pick = ctx.rng.choice(len(ranked), min(cfg.size, len(ranked)), replace=False)
        kept = [ranked[i] for i in np.sort(pick)]
    pocket = make_pocket(0, kept[0], kept, scores, radius=0) if kept else None
    return save_round(ctx, [pocket] if pocket else [], scores, float("nan"), 0)
