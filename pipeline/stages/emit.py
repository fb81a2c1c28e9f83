"""Stage ``emit``: write the shrunk space of the best round and the score-EDF plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.context import StageContext
from spaces.shrunk import Pocket, ShrunkSpace

NEEDS, MAKES = ("pockets", "scores"), ("shrunk_space",)


@dataclass(frozen=True)
class Cfg:
    """Knobs of the emit stage (filled by the runner, not by conf/shrink)."""

    provenance: dict[str, Any] = field(default_factory=dict)  # run id, seed, config, ...


def best_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the round whose pockets have the highest mean score (later round on ties).

    Round 0's pockets are chance adjacencies inside the uniform sample, never an explored
    locality, so they count only when no later round exists (an exhausted small space).
    """
    scored = [r for r in rounds if r["pockets"] and not math.isnan(r["summary"]["mean_pocket_score"])]
    scored = [r for r in scored if r["round"] > 0] or scored
    if not scored:
        raise RuntimeError(
            "no round produced a pocket; raise shrink.budget or lower shrink.min_pocket_size / good_quantile"
        )
    return max(reversed(scored), key=lambda r: r["summary"]["mean_pocket_score"])


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Emit ``shrunk_space.json`` and ``edf.png`` from the best round."""
    chosen = best_round([ctx.load("pockets", r) for r in range(ctx.round + 1) if ctx.has("pockets", r)])
    pockets = [
        Pocket(p["id"], p["seed"], p["seed_score"], p["radius"], tuple((m["arch"], m["score"]) for m in p["members"]))
        for p in chosen["pockets"]
    ]
    provenance = {**cfg.provenance, "round": chosen["round"], "threshold": chosen["threshold"]}
    shrunk = ShrunkSpace(ctx.space, pockets, chosen["metric"], provenance)
    ctx.save("shrunk_space", shrunk.to_dict())
    evaluated = ctx.evaluated()
    sample = [row for row in ctx.load("scores", 0) if row["origin"] == "uniform"]
    plot_edf(ctx.folder / "edf.png", sample, [evaluated[a] for a in shrunk.arch_strs()], chosen["metric"])
    member_scores = [evaluated[a]["score"] for a in shrunk.arch_strs()]
    return {"round": float(chosen["round"]), "shrunk_size": float(shrunk.size()),
            "pockets": float(len(pockets)), "mean_pocket_score": float(np.mean(member_scores)),
            **_reported(sample, [evaluated[a] for a in shrunk.arch_strs()])}


def _reported(sample: list[dict[str, Any]], members: list[dict[str, Any]]) -> dict[str, float]:
    """Return mean test accuracy of the sample vs the shrunk space, when the evaluator reports it."""
    if not members or any(r.get("test_acc") is None for r in sample + members):
        return {}
    return {"sample_mean_test_acc": float(np.mean([r["test_acc"] for r in sample])),
            "shrunk_mean_test_acc": float(np.mean([r["test_acc"] for r in members]))}


def plot_edf(path: Path, sample: list[dict[str, Any]], members: list[dict[str, Any]], metric: str) -> None:
    """Plot empirical distribution functions of the uniform sample vs the shrunk space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [("score", f"search score ({metric})")]
    if all(r.get("test_acc") is not None for r in sample + members):
        columns.append(("test_acc", "test accuracy (reported only)"))
    fig, axes = plt.subplots(1, len(columns), figsize=(5 * len(columns), 3.6), squeeze=False)
    for ax, (key, title) in zip(axes[0], columns, strict=True):
        for rows, label in ((sample, f"uniform sample (n={len(sample)})"), (members, f"shrunk space (n={len(members)})")):
            values = np.sort([r[key] for r in rows if math.isfinite(r[key])])
            ax.step(values, np.arange(1, len(values) + 1) / max(1, len(values)), where="post", label=label)
        ax.set(title=title, xlabel=key, ylabel="fraction <= x")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
