"""Stage ``emit``: write the shrunk space of the best round and the score-EDF plot."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import pictures
from pipeline.config.stages import EmitCfg
from pipeline.context import StageContext
from pipeline.errors import ConfigError
from pipeline.metrics import space_metrics
from spaces.shrunk import LIST_LIMIT, Pocket, ShrunkSpace

NEEDS, MAKES = ("pockets", "scores"), ("shrunk_space",)


Cfg = EmitCfg  # declared in pipeline/config/stages.py (light: read before composing)


def best_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the round whose pockets have the highest mean score (later round on ties).

    Round 0's pockets are chance adjacencies inside the uniform sample, never an explored
    locality, so they count only when no later round exists (an exhausted small space).
    """
    scored = [r for r in rounds if r["pockets"] and not math.isnan(r["summary"]["mean_pocket_score"])]
    scored = [r for r in scored if r["round"] > 0] or scored
    if not scored:
        raise ConfigError(no_pocket(len(rounds)))
    return max(reversed(scored), key=lambda r: r["summary"]["mean_pocket_score"])


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Emit ``shrunk_space.json`` and its pictures (EDFs, pocket graph, option frequencies) from the chosen round."""
    rounds = [ctx.load("pockets", r) for r in range(ctx.round + 1) if ctx.has("pockets", r)]
    if not any(r["pockets"] for r in rounds):
        raise ConfigError(no_pocket(len(rounds), len(ctx.evaluated())))
    chosen = best_round(rounds) if cfg.choose == "best" else last_round(rounds)
    pockets = [
        Pocket(p["id"], p["seed"], p["seed_score"], p["radius"], tuple((m["arch"], m["score"]) for m in p["members"]),
               p.get("region", "members"), tuple(_guess(m) for m in p["members"]),
               {k: tuple(v) for k, v in p["costs"].items()} if p.get("costs") else None)
        for p in chosen["pockets"]
    ]
    provenance = {**cfg.provenance, "round": chosen["round"], "threshold": chosen["threshold"]}
    shrunk = ShrunkSpace(ctx.space, pockets, chosen["metric"], provenance)
    ctx.save("shrunk_space", shrunk.to_dict())
    evaluated = ctx.evaluated()
    sample = [row for row in ctx.load("scores", 0) if row["origin"] == "uniform"]
    # Ball pockets too large to list are judged by their evaluated members.
    listed = shrunk.arch_strs() if shrunk.size() <= LIST_LIMIT else shrunk.members()
    kept = [evaluated[a] for a in listed if a in evaluated]
    plot_edf(ctx.folder / "edf.png", sample, kept, chosen["metric"], ctx.truth, listed)
    scores = {a: row["score"] for a, row in evaluated.items()}
    if ctx.has("graph", chosen["round"]):
        pictures.pocket_graph(ctx.folder / "pockets.png", ctx.load("graph", chosen["round"]), chosen["pockets"], scores)
    pictures.op_frequencies(ctx.folder / "op_frequencies.png", ctx.space, listed)
    return {"round": float(chosen["round"]), "shrunk_size": float(shrunk.size()),
            "evaluated_members": float(sum(a in evaluated for a in listed)),
            "mean_pocket_score": float(np.mean([r["score"] for r in kept])) if kept else float("nan"),
            **space_metrics(ctx.space, listed, len(pockets), scores, ctx.truth),
            **_reported(sample, kept)}


def _guess(member: dict[str, Any]) -> tuple[float, float] | None:
    """Return a member's surrogate (mean, spread), or None when it has none."""
    return (member["predicted"], member["uncertainty"]) if member.get("predicted") is not None else None


def last_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the last round that holds a pocket."""
    kept = [r for r in rounds if r["pockets"]]
    if not kept:
        raise ConfigError(no_pocket(len(rounds)))
    return kept[-1]


def no_pocket(rounds: int, scored: int | None = None) -> str:
    """Say why there is nothing to emit: how many archs were scored, and the knobs that make pockets easier."""
    counted = "" if scored is None else f" ({scored} archs scored; no good arch had enough good ones within the radius)"
    return (f"no round of {rounds} grew a pocket{counted}, so there is no space to emit; raise shrink.budget or "
            "shrink.pockets.radius, lower shrink.pockets.min_pocket_size / shrink.pockets.good_quantile, or loosen "
            "the constraints")


def _reported(sample: list[dict[str, Any]], members: list[dict[str, Any]]) -> dict[str, float]:
    """Return mean test accuracy of the sample vs the shrunk space, when the evaluator reports it."""
    if not members or any(r.get("test_acc") is None for r in sample + members):
        return {}
    return {"sample_mean_test_acc": float(np.mean([r["test_acc"] for r in sample])),
            "shrunk_mean_test_acc": float(np.mean([r["test_acc"] for r in members]))}


def plot_edf(path: Path, sample: list[dict[str, Any]], members: list[dict[str, Any]], metric: str,
             truth: dict[str, float] | None = None, member_strs: list[str] | None = None) -> None:
    """Plot EDFs of the search score (uniform sample vs evaluated members) and, with ground
    truth, of test accuracy (full space vs every member of the shrunk space)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"search score ({metric})", [
        ([r["score"] for r in sample], f"uniform sample (n={len(sample)})"),
        ([r["score"] for r in members], f"shrunk space, evaluated (n={len(members)})")])]
    if truth:
        kept = [truth[a] for a in member_strs or [] if a in truth]
        panels.append(("ground-truth test accuracy (reported only)", [
            (list(truth.values()), f"full space (n={len(truth)})"), (kept, f"shrunk space (n={len(kept)})")]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels, strict=True):
        # Accuracies as error on a log axis (RegNet's EDFs): the good region, where a shrunk space lives, gets the room.
        error = all(0 <= v <= 100 for values, _ in curves for v in values if v is not None and math.isfinite(v))
        for values, label in curves:
            edf_curve(ax, [max(100 - v, 1e-2) for v in values if v is not None] if error else values, label)  # log: > 0
        if error:
            ax.set_xscale("log")
            everything = [100 - v for values, _ in curves for v in values if v is not None and math.isfinite(v)]
            ax.set_xlim(max(min(everything), 1e-2) * 0.9, float(np.percentile(everything, 95)) * 1.1)  # drop the tail
        ax.set(title=title, xlabel="error = 100 - value (log scale)" if error else "value",
               ylabel="fraction of archs with error <= x" if error else "fraction <= x")
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def edf_curve(ax: Any, values: list[float], label: str) -> None:
    """Draw one empirical distribution function."""
    finite = np.sort([v for v in values if v is not None and math.isfinite(v)])
    ax.step(finite, np.arange(1, len(finite) + 1) / max(1, len(finite)), where="post", label=label)
