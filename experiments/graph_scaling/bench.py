"""Time locality-graph construction and pocket growth for N = 1e3 .. 1e6 archs, bulk vs naive.

Archs are MobileNetV3-space networks (2.2e19 archs), drawn the way a shrinkage run produces
them: clusters around seeds (each member 1-3 layer changes away from its seed), so the graph
has real edges. Each N runs in a fresh process so its peak memory (max RSS) is its own.

- bulk: ``space.pairs_within`` (hash grouping) -> CSR graph -> components -> pockets.
- naive: every pair through ``space.distance`` into a networkx graph, components and pockets
  with networkx; run where it finishes (default up to 1e4), and checked equal to bulk.

Usage: python experiments/graph_scaling/bench.py [--sizes 1000 10000 100000 1000000] [--naive-max 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.locality import LocalityGraph, extract_pockets  # noqa: E402
from spaces.mobilenet import MobileNetSpace  # noqa: E402


def clustered_archs(space: MobileNetSpace, n: int, rng: np.random.Generator, cluster: int = 50) -> list[tuple]:
    """Return n distinct archs in clusters of ``cluster`` around uniform seeds."""
    # 15% spare rows: repeated draws inside a cluster collapse when de-duplicated.
    seeds = space.codes([space.sample(rng) for _ in range(max(1, int(1.15 * n) // cluster + 1))])
    rows = np.repeat(seeds, cluster, axis=0)
    for _ in range(3):  # up to three layer changes per member, only on active (non-skip) slots
        slot = rng.integers(0, rows.shape[1], len(rows))
        change = (rows[np.arange(len(rows)), slot] > 0) & (rng.random(len(rows)) < 0.7)
        rows[np.flatnonzero(change), slot[change]] = rng.integers(1, 10, int(change.sum()))
    _, first = np.unique(rows, axis=0, return_index=True)
    rows = rows[np.sort(first)[:n]]
    options = space.options[0]
    return [tuple(options[c] for c in row) for row in rows]


def bulk(space: MobileNetSpace, archs: list[tuple], names: list[str], scores: np.ndarray, link: int) -> dict:
    """Time the project's bulk path."""
    t0 = time.perf_counter()
    pairs = space.pairs_within(archs, link)
    t1 = time.perf_counter()
    graph = LocalityGraph.from_pairs(names, pairs)
    stats = graph.stats()
    t2 = time.perf_counter()
    found = extract_pockets(graph, scores, float(np.quantile(scores, 0.8)), 2, 8, 2)
    t3 = time.perf_counter()
    return {"pairs_s": t1 - t0, "graph_s": t2 - t1, "pockets_s": t3 - t2, "total_s": t3 - t0,
            "edges": int(stats["edges"]), "components": int(stats["components"]),
            "pockets": [[names[s], sorted(names[m] for m in ms)] for s, ms in found]}


def naive(space: MobileNetSpace, archs: list[tuple], names: list[str], scores: np.ndarray, link: int) -> dict:
    """Time the all-pairs networkx path (what a direct implementation does)."""
    import networkx as nx

    t0 = time.perf_counter()
    graph = nx.Graph()
    graph.add_nodes_from(names)
    for i in range(len(archs)):
        for j in range(i + 1, len(archs)):
            if space.distance(archs[i], archs[j]) <= link:
                graph.add_edge(names[i], names[j])
    components = nx.number_connected_components(graph)
    t1 = time.perf_counter()
    value = dict(zip(names, scores.tolist(), strict=True))
    cut = float(np.quantile(scores, 0.8))
    ranked = sorted((a for a in graph if value[a] >= cut), key=lambda a: (-value[a], a))
    good, claimed, found = graph.subgraph(ranked), set(), []
    for seed in ranked:
        if len(found) == 8:
            break
        if seed in claimed:
            continue
        region = nx.single_source_shortest_path_length(good, seed, cutoff=2)
        members = [a for a in region if a not in claimed]
        if len(members) >= 2:
            claimed.update(members)
            found.append([seed, sorted(members)])
    t2 = time.perf_counter()
    return {"graph_s": t1 - t0, "pockets_s": t2 - t1, "total_s": t2 - t0, "edges": graph.number_of_edges(),
            "components": components, "pockets": found}


def one(n: int, link: int, with_naive: bool) -> dict:
    """Run one size in this process and return its figures."""
    space, rng = MobileNetSpace(), np.random.default_rng(n)
    archs = clustered_archs(space, n, rng)
    names = [space.to_str(a) for a in archs]
    scores = rng.random(len(archs))
    out = {"n": len(archs), "link_distance": link, "bulk": bulk(space, archs, names, scores, link)}
    if with_naive:
        out["naive"] = naive(space, archs, names, scores, link)
        out["same_result"] = all(out["bulk"][k] == out["naive"][k] for k in ("edges", "components", "pockets"))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for part in ("bulk", "naive"):
        out.get(part, {}).pop("pockets", None)
    return out


def main() -> None:
    """Run every size in its own process and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--naive-max", type=int, default=10_000)
    parser.add_argument("--link", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.link[0], args.naive)))
        return
    print(f"{'N':>9} {'link':>4} {'edges':>9} {'pairs s':>8} {'graph s':>8} {'pockets s':>9} {'bulk s':>8} "
          f"{'naive s':>9} {'ratio':>7} {'same':>5} {'peak MB':>8}")
    for link in args.link:
        for n in args.sizes:
            cmd = [sys.executable, __file__, "--one", str(n), "--link", str(link)]
            cmd += ["--naive"] if n <= args.naive_max else []
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            b, nv = r["bulk"], r.get("naive")
            ratio = f"{nv['total_s'] / b['total_s']:.0f}x" if nv else "-"
            print(f"{r['n']:>9,} {link:>4} {b['edges']:>9,} {b['pairs_s']:>8.2f} {b['graph_s']:>8.2f} "
                  f"{b['pockets_s']:>9.2f} {b['total_s']:>8.2f} {nv['total_s'] if nv else float('nan'):>9.2f} "
                  f"{ratio:>7} {str(r.get('same_result', '-')):>5} {r['peak_rss_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
