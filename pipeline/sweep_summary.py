"""A sweep's summary: one row per job, mean +- std per setting of the headline metrics, one figure."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

PLOTTED = ("result/mean_test_acc", "result/best_test_acc", "result/regret", "result/size", "result/mean_score")


def _setting(overrides: list[str], keys: list[str]) -> str:
    """Return a job's values of the swept keys (seed aside), e.g. ``topk 200``; ``all`` when nothing else varies."""
    values = dict(item.lstrip("+~").partition("=")[::2] for item in overrides)
    label = " ".join(_short(values.get(k, "?")) for k in keys)
    return re.sub(r"[^\w.\- /]", "-", label) or "all"  # MLflow metric names allow only these


def _short(value: str) -> str:
    """Return a number with 4 significant digits (an Optuna trial's 0.7860757465489678 -> 0.7861), else the text."""
    try:
        return f"{float(value):.4g}" if "." in value else value
    except ValueError:
        return value


def job_rows(jobs: list[Any], keys: list[str]) -> list[dict[str, Any]]:
    """Return one row per job run of the sweep: its setting, seed, status and headline metrics."""
    rows = []
    for job in jobs:
        overrides = json.loads(job.data.tags.get("overrides", "[]"))
        rows.append({"run": job.info.run_name, "setting": _setting(overrides, keys), "seed": job.data.tags.get("seed", ""),
                     "status": job.info.status,
                     **{k: v for k, v in sorted(job.data.metrics.items()) if k.startswith("result/")}})
    return rows


def mean_std(rows: list[dict[str, Any]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Return setting -> headline metric -> (mean, sample std) over the finished jobs."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["status"] == "FINISHED":
            for key, value in row.items():
                if key.startswith("result/") and math.isfinite(value):
                    values[row["setting"]][key].append(value)
    return {setting: {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                      for k, v in figures.items()} for setting, figures in values.items()}


def markdown(rows: list[dict[str, Any]], stats: dict[str, dict[str, tuple[float, float]]]) -> str:
    """Return the summary as markdown: mean +- std per setting, then the setting x seed table."""
    metrics = sorted({k for figures in stats.values() for k in figures})
    lines = ["**Mean +- std per setting** (finished jobs)", "",
             "| setting | n | " + " | ".join(m.removeprefix("result/") for m in metrics) + " |",
             "|---" * (len(metrics) + 2) + "|"]
    counts = defaultdict(int)
    for row in rows:
        counts[row["setting"]] += row["status"] == "FINISHED"
    for setting, figures in stats.items():
        cells = [f"{figures[m][0]:.4g} +- {figures[m][1]:.2g}" if m in figures else "" for m in metrics]
        lines.append(f"| {setting} | {counts[setting]} | " + " | ".join(cells) + " |")
    key = next((m for m in PLOTTED if m in metrics), metrics[0] if metrics else None)
    if key is not None:
        seeds = sorted({str(r["seed"]) for r in rows}, key=lambda s: (len(s), s))
        table = {(r["setting"], str(r["seed"])): r.get(key) for r in rows}
        lines += ["", f"**{key} per setting x seed**", "", "| setting | " + " | ".join(seeds) + " |",
                  "|---" * (len(seeds) + 1) + "|"]
        for setting in dict.fromkeys(r["setting"] for r in rows):
            cells = ["" if table.get((setting, s)) is None else f"{table[(setting, s)]:.4g}" for s in seeds]
            lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(path: Path, rows: list[dict[str, Any]]) -> None:
    """Draw, per headline metric, every job as a dot and each setting's mean +- std as a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in PLOTTED if any(m in r for r in rows)][:4]
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, axes = plt.subplots(1, max(1, len(shown)), figsize=(3.6 * max(1, len(shown)), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], shown, strict=False):
        for i, setting in enumerate(settings):
            values = [r[metric] for r in rows if r["setting"] == setting and metric in r and r["status"] == "FINISHED"]
            if values:
                ax.errorbar([i], [np.mean(values)], [np.std(values, ddof=1) if len(values) > 1 else 0.0],
                            fmt="s", color="black", capsize=4, zorder=3)
                ax.scatter(np.full(len(values), i) + np.linspace(-0.12, 0.12, len(values)), values, s=14, alpha=0.7)
        ax.set_xticks(range(len(settings)), settings, rotation=30, fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("sweep: each job (dots), mean +- std per setting (black)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
