"""Stage ``evaluate``: score the proposed architectures that are new, within the budget.

Each result is appended to ``journal.jsonl`` in the stage folder as soon as it exists, so an
interrupted stage resumes without re-evaluating anything it already scored.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.config.stages import EvaluateCfg
from pipeline.context import StageContext
from pipeline.evaluators.base import EvaluatorError
from pipeline.executors import Failure
from spaces.files import strict_dumps

NEEDS, MAKES = ("proposals",), ("scores",)


Cfg = EvaluateCfg  # declared in pipeline/config/stages.py (light: read before composing)


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """Return the complete rows of a journal (a torn last line is ignored)."""
    rows: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["arch"]] = _numbers(row)
    return rows


def _numbers(row: dict[str, Any]) -> dict[str, Any]:
    """Restore the non-finite numbers strict JSON wrote as null: a null score ranked worst, other nulls NaN."""
    return {k: (-math.inf if k == "score" else math.nan) if v is None else v for k, v in row.items()}


def run(ctx: StageContext, cfg: Cfg) -> dict[str, float]:
    """Evaluate new proposals in order until the run's budget is spent."""
    done_before = ctx.evaluated()
    todo = [p for p in ctx.load("proposals") if p["arch"] not in done_before]
    todo = todo[: max(0, ctx.budget - len(done_before))]
    journal_path = ctx.folder / "journal.jsonl"
    journal = read_journal(journal_path)
    pending = [p for p in todo if p["arch"] not in journal]
    results = ctx.executor.map(ctx.evaluator, [ctx.space.from_str(p["arch"]) for p in pending])
    with journal_path.open("a") as journal_file:
        bar = tqdm(zip(pending, results, strict=True), total=len(pending), desc=f"round {ctx.round} evaluate",
                   disable=not cfg.progress, leave=False)
        for proposal, result in bar:
            row = _row(ctx, proposal, result)
            journal[proposal["arch"]] = row
            journal_file.write(strict_dumps(row, indent=None) + "\n")
            journal_file.flush()
            ctx.progress({"evaluations": float(len(done_before) + len(journal))})
    rows = [journal[p["arch"]] for p in todo]
    failed = [r for r in rows if r.get("failed")]
    if rows and len(failed) == len(rows):
        raise EvaluatorError(f"all {len(rows)} evaluations of round {ctx.round} failed; first: {failed[0]['note']}")
    ctx.save("scores", rows)
    return {**_summary(rows, len(done_before) + len(rows)), "failed": float(len(failed))}


def _row(ctx: StageContext, proposal: dict[str, Any], result: dict[str, float] | Failure) -> dict[str, Any]:
    """Return the journal row of one result: its metrics, or the failure ranked worst."""
    base = {"arch": proposal["arch"], "origin": proposal["origin"], "round": ctx.round}
    if isinstance(result, Failure):
        note = f"failed after {result.attempts} attempt(s): {result.error}"
        warnings.warn(f"{proposal['arch']}: {note}; recorded as the worst score", RuntimeWarning, stacklevel=2)
        return {**base, "score": -math.inf, "note": note, "failed": 1}
    raw = float(result[ctx.evaluator.metric])
    note = ""
    over = ctx.violation(proposal["arch"])
    if over:
        # Over the resource budget: kept for the record, never good enough for a pocket.
        return {**base, "score": -math.inf, "note": f"over budget: {over}", **result}
    if not math.isfinite(raw):
        # NaN would sort unpredictably and +inf would look best: rank it worst and say why.
        note = f"{ctx.evaluator.metric} was {raw}; recorded as the worst score"
        warnings.warn(f"{proposal['arch']}: {note}", RuntimeWarning, stacklevel=2)
    return {**base, "score": raw if not note else -math.inf, "note": note, **result}


def _summary(rows: list[dict[str, Any]], total: int) -> dict[str, float]:
    """Return the stage's metrics."""
    scores = [r["score"] for r in rows]
    return {
        "evaluated": float(len(rows)),
        "evaluated_total": float(total),
        "round_best_score": max(scores, default=float("nan")),
        "round_mean_score": sum(scores) / len(scores) if scores else float("nan"),
    }
