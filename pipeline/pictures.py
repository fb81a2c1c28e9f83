"""Pictures a researcher would rather look at than read: pocket graph, op frequencies, supernet vs truth.

Each function writes one PNG (through a temp file, so a kill leaves no half picture) and returns
its path, or None when the run has nothing to draw (no graph, no categorical decisions, ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spaces.base import CategoricalSpace, SearchSpace
from spaces.files import atomic_write

GRAPH_NODE_LIMIT = 3000  # a spring layout beyond this takes minutes and draws a blot


def _figure(width: float, height: float) -> tuple[Any, Any]:
    """Return a headless matplotlib (figure, pyplot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height)), plt


def _save(fig: Any, plt: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically and close it."""
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)


def pocket_graph(path: Path, graph: Mapping[str, Any], pockets: Sequence[Mapping[str, Any]],
                 scores: Mapping[str, float]) -> Path | None:
    """Draw the locality graph (spring layout) coloured by score, each pocket's members ringed in its colour."""
    import networkx as nx

    nodes = list(graph["nodes"])
    if not nodes or len(nodes) > GRAPH_NODE_LIMIT:
        return None
    g = nx.Graph()
    g.add_nodes_from(range(len(nodes)))
    g.add_edges_from(map(tuple, graph["edges"]))
    layout = nx.spring_layout(g, seed=0, k=1.5 / math.sqrt(len(nodes)))
    xy = np.array([layout[i] for i in range(len(nodes))])
    value = np.array([scores.get(a, math.nan) for a in nodes], dtype=float)
    value[~np.isfinite(value)] = np.nan
    fig, plt = _figure(7.5, 6.5)
    ax = fig.add_subplot()
    for a, b in graph["edges"]:
        ax.plot(*xy[[a, b]].T, color="0.85", lw=0.4, zorder=1)
    # A few failed or tiny scores would flatten the colour scale: it starts at the 10th percentile.
    low = float(np.nanpercentile(value, 10)) if np.isfinite(value).any() else None
    dots = ax.scatter(xy[:, 0], xy[:, 1], c=value, cmap="viridis", s=14, zorder=2, vmin=low)
    fig.colorbar(dots, ax=ax, label="search score")
    where = {a: i for i, a in enumerate(nodes)}
    colours = plt.get_cmap("tab10")
    for k, pocket in enumerate(pockets):
        idx = [where[m["arch"]] for m in pocket["members"] if m["arch"] in where]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=70, facecolors="none", edgecolors=[colours(k % 10)], lw=1.4, zorder=3,
                   label=f"pocket {pocket['id']}: {len(pocket['members'])} archs, {len(idx)} evaluated")
    ax.set(title=f"locality graph of {len(nodes)} evaluated archs; pockets ringed", xticks=[], yticks=[])
    if pockets:
        ax.legend(loc="best", fontsize=7)
    return _save(fig, plt, path)


def op_frequencies(path: Path, space: SearchSpace, members: Sequence[str], draws: int = 4000) -> Path | None:
    """Draw, per decision, how often each option occurs in the shrunk space vs uniform draws of the full space."""
    if not isinstance(space, CategoricalSpace) or not members:
        return None
    shrunk = space.codes([space.from_str(a) for a in members])
    rng = np.random.default_rng(0)  # a picture, not a result: its own fixed draws
    full = space.codes([space.sample(rng) for _ in range(draws)])
    columns = min(6, len(space.decisions))
    rows = math.ceil(len(space.decisions) / columns)
    fig, plt = _figure(2.6 * columns, 2.3 * rows + 0.6)
    for d, (name, options) in enumerate(zip(space.decisions, space.options, strict=True)):
        ax = fig.add_subplot(rows, columns, d + 1)
        pos = np.arange(len(options))
        ax.bar(pos - 0.2, np.bincount(full[:, d], minlength=len(options)) / len(full), 0.4, label="full space",
               color="0.7")
        ax.bar(pos + 0.2, np.bincount(shrunk[:, d], minlength=len(options)) / len(shrunk), 0.4, label="shrunk space")
        ax.set_xticks(pos, [str(o)[:12] for o in options], rotation=60, fontsize=6)
        ax.set_title(str(name), fontsize=8)
        ax.set_ylim(0, 1)
    fig.axes[0].legend(fontsize=6)
    fig.suptitle(f"option frequency per decision: shrunk space ({len(members)} archs) vs full space", fontsize=10)
    fig.tight_layout()
    return _save(fig, plt, path)


def supernet_scatter(path: Path, rows: Sequence[Mapping[str, Any]], reference: str) -> Path | None:
    """Scatter the supernet's accuracy of each ranked subnet against its reference accuracy, per set."""
    if not rows:
        return None
    fig, plt = _figure(5.5, 4.5)
    ax = fig.add_subplot()
    for name in dict.fromkeys(r["set"] for r in rows):
        picked = [r for r in rows if r["set"] == name]
        ax.scatter([r["reference"] for r in picked], [r["supernet_acc"] for r in picked], s=16, label=f"{name} ({len(picked)})")
    ax.set(xlabel=reference, ylabel="supernet accuracy (inherited weights, BN recalibrated)",
           title="supernet ranking vs reference")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, plt, path)
