"""Stage ``sample``: draw the initial uniform, de-duplicated sample of the space."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.context import StageContext

NEEDS, MAKES = (), ("proposals",)


@dataclass(frozen=True)
class Cfg:
    """Knobs of the sample stage."""

    n_samples: int  # uniform samples evaluated in round 0 (capped by the budget)


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Propose ``n_samples`` distinct architectures drawn uniformly from the space."""
    archs = ctx.space.sample_unique(min(cfg.n_samples, ctx.budget), ctx.rng)
    ctx.save("proposals", [{"arch": ctx.space.to_str(a), "origin": "uniform"} for a in archs])
    return {"proposed": float(len(archs))}
