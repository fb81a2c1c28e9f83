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
    fig, plt = _figure(13.5, 6.0)
    ax, strip = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for a, b in graph["edges"]:
        ax.plot(*xy[[a, b]].T, color="0.85", lw=0.4, zorder=1)
    # A few failed or tiny scores would flatten the colour scale: it starts at the 10th percentile (the bar says so).
    low = float(np.nanpercentile(value, 10)) if np.isfinite(value).any() else None
    dots = ax.scatter(xy[:, 0], xy[:, 1], c=value, cmap="viridis", s=10, zorder=2, vmin=low, alpha=0.8)
    fig.colorbar(dots, ax=ax, label="search score (below the 10th percentile: darkest)", extend="min", shrink=0.8)
    where = {a: i for i, a in enumerate(nodes)}
    colours = plt.get_cmap("tab10")
    for k, pocket in enumerate(pockets):
        idx = [where[m["arch"]] for m in pocket["members"] if m["arch"] in where]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=60, facecolors="none", edgecolors=[colours(k % 10)], lw=1.2, zorder=3,
                   label=f"pocket {pocket['id']}: {len(pocket['members'])} archs, {len(idx)} evaluated")
    ax.set(title=f"locality graph of {len(nodes)} evaluated archs; pockets ringed", xticks=[], yticks=[])
    if pockets:
        ax.legend(loc="lower left", fontsize=7, framealpha=0.9)
    pocket_strip(strip, pockets, value, colours)
    return _save(fig, plt, path)


def pocket_strip(ax: Any, pockets: Sequence[Mapping[str, Any]], value: np.ndarray, colours: Any) -> None:
    """Draw each pocket's member scores (evaluated: filled; surrogate-predicted: hollow) beside every evaluated arch."""
    rng = np.random.default_rng(0)  # horizontal jitter only
    finite = value[np.isfinite(value)]
    if finite.size:
        ax.scatter(rng.uniform(-0.3, 0.3, finite.size), finite, s=8, color="0.6", label="every evaluated arch")
    for k, pocket in enumerate(pockets, start=1):
        known = [m["score"] for m in pocket["members"] if m.get("score") is not None]
        guessed = [m["predicted"] for m in pocket["members"] if m.get("score") is None and "predicted" in m]
        ax.scatter(k + rng.uniform(-0.3, 0.3, len(known)), known, s=14, color=colours((k - 1) % 10))
        ax.scatter(k + rng.uniform(-0.3, 0.3, len(guessed)), guessed, s=14, facecolors="none",
                   edgecolors=[colours((k - 1) % 10)])
    ax.set_xticks(range(len(pockets) + 1), ["all"] + [f"pocket {p['id']}" for p in pockets], rotation=45, fontsize=7)
    shown = np.concatenate([finite, [v for p in pockets for m in p["members"]
                                      for v in (m.get("score"), m.get("predicted")) if v is not None]])
    if shown.size:
        bottom, top = float(np.percentile(finite if finite.size else shown, 10)), float(np.max(shown))
        pad = 0.05 * (top - bottom or 1.0)
        ax.set_ylim(bottom - pad, top + pad)
    ax.set(title="scores per pocket (filled: evaluated, hollow: predicted)", ylabel="search score")
    ax.grid(alpha=0.3, axis="y")


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
