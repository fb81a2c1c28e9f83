"""What a run prints: the round table and the end-of-run lines (emitted space, budget, ground truth's verdict)."""

from __future__ import annotations

import math

from spaces.base import SearchSpace


def round_header() -> str:
    """Return the per-round table header (what each column counts is in ROUND_LEGEND)."""
    return ("round  evals  evals_total  pockets  space_size  space_evaluated  mean_evaluated_member  "
            "best_evaluated_member  best_overall\n" + ROUND_LEGEND)


ROUND_LEGEND = ("  (evals: archs evaluated this round; space_size: archs in this round's shrunk space, "
                "of which space_evaluated have a score; scores are the search metric)")


def round_row(r: int, row: dict[str, float]) -> str:
    """Return one line of the per-round table."""
    return (f"{r:>5} {int(row['evaluated']):>6} {int(row['evaluated_total']):>12} {int(row['pockets']):>8} "
            f"{int(row['shrunk_size']):>11} {int(row.get('evaluated_members', row['shrunk_size'])):>16} "
            f"{row['mean_pocket_score']:>22.3f} {row['best_pocket_score']:>22.3f} {row['best_overall']:>13.3f}")


def summary_lines(final: dict[str, float], space: SearchSpace, rounds: int, spent: int, budget: int,
                  unevaluated: str = "predicted") -> list[str]:
    """Return the end-of-run lines: what was emitted and what the budget bought."""
    size = int(final["shrunk_size"])
    evaluated = int(final.get("evaluated_members", size))
    return [f"emitted: round {int(final['round'])} of rounds 0-{rounds - 1}; {size:,} archs = {size / space.size():.3%} "
            f"of {space.name} ({space.size():,}); {int(final['pockets'])} pockets; "
            f"{evaluated:,} evaluated + {size - evaluated:,} {unevaluated} members",
            f"evaluations: {spent:,} spent of budget {budget:,}", *verdict_lines(final)]


def verdict_lines(final: dict[str, float]) -> list[str]:
    """Return the ground truth's verdict on the emitted space (none without ground truth): quality, regret, recall."""
    if "gt_mean" not in final:
        return []
    line = (f"verdict (ground truth, test accuracy): emitted space mean {final['gt_mean']:.2f}, best "
            f"{final['gt_best']:.2f} (regret {final['regret']:.2f})")
    if "recall_top0.1pct" in final:
        line += (f"; holds {final['recall_top0.1pct']:.0%} of the space's top 0.1% and "
                 f"{final.get('recall_top1pct', math.nan):.0%} of its top 1%")
    compared = [f"{name} mean {final[key]:.2f}" for key, name in (("sample_mean_test_acc", "round-0 uniform sample"),
                                                                   ("gt_full_mean", "whole space")) if key in final]
    return [line, "  vs " + "; ".join(compared)] if compared else [line]

