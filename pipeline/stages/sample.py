"""Stage ``sample``: draw uniform, de-duplicated architectures to evaluate.

Round 0 samples the whole space. In later rounds (methods that refine a per-decision
restriction) it samples uniformly inside the restriction the previous round left.
"""

from __future__ import annotations

import numpy as np

from pipeline.config.stages import SampleCfg
from pipeline.context import StageContext
from pipeline.errors import ConfigError
from pipeline.stages.refine import categorical, current_restriction

NEEDS, MAKES = (), ("proposals",)


Cfg = SampleCfg  # declared in pipeline/config/stages.py (light: read before composing)


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Propose distinct architectures drawn uniformly from the (restricted) space."""
    if ctx.round == 0 and ctx.constraints.active:
        archs = feasible_sample(ctx, min(cfg.n_samples, ctx.budget))
    elif ctx.round == 0:
        archs = [ctx.space.to_str(a) for a in ctx.space.sample_unique(min(cfg.n_samples, ctx.budget), ctx.rng)]
    else:
        archs = restricted_sample(ctx, cfg.samples_per_round)
    ctx.save("proposals", [{"arch": a, "origin": "uniform"} for a in archs])
    return {"proposed": float(len(archs))}


def feasible_sample(ctx: StageContext, n: int, attempts_per_arch: int = 200) -> list[str]:
    """Draw up to ``n`` distinct archs uniformly among those within the resource budget."""
    seen: set[str] = set()
    out: list[str] = []
    for _ in range(n * attempts_per_arch):
        if len(out) == n:
            break
        key = ctx.space.to_str(ctx.space.canonical(ctx.space.sample(ctx.rng)))
        if key not in seen:
            seen.add(key)
            if ctx.feasible(key):
                out.append(key)
    if not out:
        raise ConfigError(f"no architecture within {ctx.constraints} in {len(seen)} distinct draws; loosen the budget")
    return out


def restricted_sample(ctx: StageContext, n: int) -> list[str]:
    """Draw up to ``n`` unevaluated archs uniformly inside the previous round's restriction."""
    space = categorical(ctx)
    allowed = current_restriction(ctx)
    seen = set(ctx.evaluated())
    inside_seen = sum(all(o in opts for o, opts in zip(space.from_str(a), allowed, strict=True)) for a in seen)
    n = min(n, int(np.prod([len(o) for o in allowed])) - inside_seen)
    out: list[str] = []
    while len(out) < n:
        key = space.to_str(space.sample_restricted(allowed, ctx.rng))
        if key not in seen:
            seen.add(key)
            out.append(key)
    return [a for a in out if ctx.feasible(a)]
