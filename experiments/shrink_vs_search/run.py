"""Does the shrunk space beat what a good searcher gets with the same evaluations? One harness.

For every (space, dataset, budget, seed): run the pipeline (LISSNAS, benchmark evaluator, the
given budget), then with the same budget run REA, local search, random search and TPE on the
full space through the same evaluation accounting (``pipeline/searchers``), and compare:

- **quality at equal size K** (K = the emitted size): the emitted space vs the same region rule
  (locality pockets + surrogate fill, ``pipeline.stages.pockets``) applied to REA's and local
  search's evaluations; and the method's own evaluated top-K vs REA's, local search's and random
  search's top-K (by validation). All judged with ground truth over all members.
- **downstream at equal total budget**: each searcher inside the emitted space with N more
  evaluations (scores the shrinkage already paid for are free) vs the same searcher on the full
  space with (shrinkage evaluations + N); regret (test) of the arch picked by validation.

Search uses validation accuracy only; test accuracy judges. Rows go to ``results.jsonl``
(append-only: a rerun skips finished jobs), the summary tables to ``summary.md``, and everything
to MLflow (experiment ``shrink-vs-search``; the pipeline runs under ``shrink-vs-search-runs``).

Usage:
  python experiments/shrink_vs_search/run.py --table benchmarks/nb201.csv --datasets cifar10 cifar100 ImageNet16-120 \
      --budgets 100 200 500 --seeds 0-9 --out experiments/shrink_vs_search/results/nb201
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.common import compose_cfg, paired, parse_seeds, picked_regret, top_k  # noqa: E402

SEARCHERS = ("rea", "local_search", "random", "tpe", "epnas")
DOWNSTREAM = (50, 100)


def judge(members: list[str], truth: Mapping[str, float], space: Any) -> dict[str, float]:
    """Return ground-truth figures of a set of archs (all of them, evaluated or not)."""
    from pipeline.metrics import mean_distance, recall_top

    kept = np.array([truth[a] for a in members if a in truth])
    if not len(kept):
        return {}
    best = max(truth.values())
    return {"size": float(len(members)), "mean": float(kept.mean()), "median": float(np.median(kept)),
            "best": float(kept.max()), "holds_opt": float(kept.max() >= best), "r01": recall_top(members, truth, 0.001),
            "r1": recall_top(members, truth, 0.01), "dist": mean_distance(space, members)}


def pocket_seeds(space: Any, history: list[tuple[str, float]], uniform: int, shrink: Mapping[str, Any]) -> list[str]:
    """Return the pocket seeds the pockets stage would pick from this history (best first)."""
    from pipeline.locality import LocalityGraph
    from pipeline.stages.pockets import Cfg, extract_pockets

    scores = dict(history)
    names = list(scores)
    graph = LocalityGraph.from_pairs(names, space.pairs_within([space.from_str(a) for a in names], shrink["link_distance"]))
    cut = float(np.quantile([s for _, s in history[:uniform]], shrink["good_quantile"]))
    cfg = Cfg(radius=shrink["radius"], good_quantile=shrink["good_quantile"], max_pockets=shrink["max_pockets"],
              min_pocket_size=shrink["min_pocket_size"])
    return [p["seed"] for p in extract_pockets(graph, scores, cut, cfg)] or [max(scores, key=scores.get)]


def region(space: Any, history: list[tuple[str, float]], uniform: int, shrink: Mapping[str, Any], size: int,
           rng: np.random.Generator, feasible: Callable[[str], bool]) -> list[str]:
    """Apply the emitted-space rule (pockets over the locality graph + surrogate fill) to any search history."""
    from pipeline.stages.pockets import fill_pockets

    scores = dict(history)
    seeds = pocket_seeds(space, history, uniform, shrink)
    pockets = fill_pockets(space, seeds, scores, shrink["radius"], size, rng, feasible, shrink["pool_per_seed"],
                           shrink["trees"], min_size=int(shrink.get("min_pocket_size", 1)),
                           optimism=float(shrink.get("optimism", 0.0)))
    return [m["arch"] for p in pockets for m in p["members"]]


def ball_region(space: Any, history: list[tuple[str, float]], uniform: int, shrink: Mapping[str, Any], size: int,
                rng: np.random.Generator, feasible: Callable[[str], bool]) -> list[str]:
    """Return the ``size`` archs nearest the same pocket seeds (hops, then seed rank): balls, no surrogate."""
    from pipeline.stages.pockets import neighbourhood

    seeds = pocket_seeds(space, history, uniform, shrink)
    hops: dict[str, tuple[int, int]] = {}
    for rank, seed in enumerate(seeds):
        for arch, hop in neighbourhood(space, seed, shrink["radius"], shrink["pool_per_seed"], rng, feasible).items():
            hops[arch] = min(hops.get(arch, (hop, rank)), (hop, rank))
    return sorted(hops, key=lambda a: (*hops[a], a))[:size]


def proxy_score(cfg: Any) -> Callable[[str], float]:
    """Return the run's (proxy) evaluator as a memoised score function over arch strings."""
    from pipeline.build import build

    space, evaluator, _ = build(cfg)
    memo: dict[str, float] = {}

    def score(arch: str) -> float:
        if arch not in memo:
            value = float(evaluator.evaluate(space.from_str(arch))[evaluator.metric])
            memo[arch] = value if math.isfinite(value) else -math.inf
        return memo[arch]

    return score


def one_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline and every comparison for one (dataset, budget, seed)."""
    import torch

    torch.set_num_threads(1)
    from pipeline.artifacts import read_rows
    from pipeline.build import build_constraints
    from pipeline.evaluators.benchmark import read_table
    from pipeline.run import run
    from pipeline.searchers import SEARCHERS as FUNCS
    from pipeline.searchers import FullDomain, Oracle, ShrunkDomain, table_score
    from spaces.shrunk import ShrunkSpace

    proxy = job["evaluator"] != "benchmark"
    # A proxy scores networks built for real images it can load here (digits); the table only judges.
    driver = ([f"evaluator={job['evaluator']}", f"dataset={job['proxy_data']}", "ground_truth=null"] if proxy
              else ["evaluator=benchmark", f"evaluator.path={job['table']}", f"dataset={job['dataset']}"])
    overrides = [f"space={job['space']}", *driver, f"seed={job['seed']}", f"shrink.budget={job['budget']}", "progress=false",
                 "supernet=none", f"tracking.uri={job['uri']}", "tracking.experiment=shrink-vs-search-runs",
                 *(["constraints.max_flops=" + str(job["max_flops"])] if job["max_flops"] else []),
                 *(f"constraints.{c}" for c in job.get("constraints", [])), *job["extra"]]
    cfg = compose_cfg(overrides)
    started = time.time()
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            result = run(cfg, Path(job["run_dir"]))
        finally:
            sys.stdout = stdout
    seconds = time.time() - started
    shrunk = ShrunkSpace.load(result.shrunk_space)
    space = shrunk.base
    table = read_table(Path(job["table"]), space, job["dataset"])
    budget = build_constraints(cfg)
    feasible = (lambda a: budget.violation(table[a]) is None) if budget.active else (lambda a: True)
    truth = {a: r["test_acc"] for a, r in table.items() if feasible(a)}
    rounds = sorted(Path(job["run_dir"]).glob("round_*/evaluate/scores.csv"))
    history = [(r["arch"], r["score"]) for path in rounds for r in read_rows(path) if math.isfinite(r["score"])]
    spent = int(result.rounds[-1]["evaluated_total"])
    members = shrunk.arch_strs()
    size = len(members)
    shrink_cfg = {**cfg.shrink.graph, **cfg.shrink.pockets}  # the locality and pocket knobs the run used
    rng = lambda tag: np.random.default_rng([job["seed"], tag])  # noqa: E731
    score = proxy_score(cfg) if proxy else table_score(table)
    runs = {name: FUNCS[name](FullDomain(space, feasible), Oracle(score, spent), rng(i)).history
            for i, name in enumerate(SEARCHERS)}
    row = {k: job[k] for k in ("space", "dataset", "budget", "seed", "max_flops", "evaluator")}
    row["constraints"] = " ".join(job.get("constraints", []))
    row.update({"spent": spent, "emitted_size": size, "evaluated_members": shrunk.evaluated_count(),
                "pockets": len(shrunk.pockets), "stop_reason": result.stop_reason, "pipeline_seconds": seconds})
    k = min(size, spent)
    arms = {"lissnas": members, "lissnas_topk": top_k(history, k),
            "rea_region": region(space, runs["rea"], 50, shrink_cfg, size, rng(10), feasible),
            "ls_region": region(space, runs["local_search"], 10, shrink_cfg, size, rng(11), feasible),
            "rea_ball": ball_region(space, runs["rea"], 50, shrink_cfg, size, rng(12), feasible),
            **{f"{n}_topk": top_k(runs[n], k) for n in ("rea", "local_search", "random", "epnas")}}
    for arm, archs in arms.items():
        row.update({f"{arm}/{m}": v for m, v in judge(archs, truth, space).items()})
    known = dict(history)
    for n in job["downstream"]:
        for i, name in enumerate(SEARCHERS):
            inside = FUNCS[name](ShrunkDomain(shrunk), Oracle(score, n, known), rng(100 + i)).cache
            full = FUNCS[name](FullDomain(space, feasible), Oracle(score, spent + n), rng(200 + i)).cache
            row[f"down{n}/{name}/shrunk"] = picked_regret(inside, truth)
            row[f"down{n}/{name}/full"] = picked_regret(full, truth)
    return row


def summary(rows: list[dict[str, Any]]) -> str:
    """Return the markdown tables of the bars, one line per (space, dataset, budget, flops)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        key = (r["space"], r["dataset"], r["budget"], r["max_flops"], r.get("evaluator", "benchmark"), r.get("constraints", ""))
        groups.setdefault(key, []).append(r)
    quality = ["| setting | seeds | spent | size (eval.) | emitted vs REA region: mean test | vs LS region: mean test "
               "| vs REA balls: mean test | R@0.1%: emitted vs REA region | own top-K vs REA top-K: mean test "
               "| R@0.1%: own top-K vs REA top-K | own top-K vs LS top-K: mean test "
               "| own top-K vs EPNAS top-K: mean test |", "|---" * 12 + "|"]
    down = ["| setting | N | " + " | ".join(f"{s}: shrunk+N vs full (regret)" for s in SEARCHERS) + " |",
            "|---" * (2 + len(SEARCHERS)) + "|"]
    for key in sorted(groups, key=str):
        g = groups[key]
        name = (f"{key[0]} {key[1]} B={key[2]}" + (f" flops<={key[3]:.0e}" if key[3] else "")
                + (f" ({key[4]})" if key[4] != "benchmark" else "") + (f" [{key[5]}]" if key[5] else ""))
        size = f"{np.mean([r['emitted_size'] for r in g]):.0f} ({np.mean([r['evaluated_members'] for r in g]):.0f})"
        quality.append(f"| {name} | {len(g)} | {np.mean([r['spent'] for r in g]):.0f} | {size} | "
                       f"{paired(g, 'lissnas/mean', 'rea_region/mean')} | {paired(g, 'lissnas/mean', 'ls_region/mean')} | "
                       f"{paired(g, 'lissnas/mean', 'rea_ball/mean')} | "
                       f"{paired(g, 'lissnas/r01', 'rea_region/r01')} | {paired(g, 'lissnas_topk/mean', 'rea_topk/mean')} | "
                       f"{paired(g, 'lissnas_topk/r01', 'rea_topk/r01')} | "
                       f"{paired(g, 'lissnas_topk/mean', 'local_search_topk/mean')} | "
                       f"{paired(g, 'lissnas_topk/mean', 'epnas_topk/mean')} |")
        for n in sorted({int(k.split("/")[0][4:]) for r in g for k in r if k.startswith("down")}):
            cells = [paired(g, f"down{n}/{s}/shrunk", f"down{n}/{s}/full", higher_better=False) for s in SEARCHERS]
            down.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    legend = ("Cells: method mean ± std vs baseline mean ± std (better/tied/worse pairs for the method; "
              "regret: lower is better).")
    return "\n".join(["## Quality at equal size and budget", "", *quality, "", "## Downstream at equal total budget", "",
                      *down, "", legend, ""])


def log_mlflow(uri: str, rows: list[dict[str, Any]], out: Path, args: argparse.Namespace) -> str:
    """Log one parent run (settings, artifacts) with a child run per job (its figures)."""
    from pipeline.tracking import Tracker

    tracker = Tracker(uri, "shrink-vs-search")
    with tracker.run(f"shrink-vs-search {out.name}", None, {"harness": "shrink_vs_search"}) as parent:
        tracker.params(parent, {"table": str(args.table), "space": args.space, "budgets": str(args.budgets),
                                "seeds": args.seeds, "datasets": str(args.datasets), "max_flops": str(args.max_flops)})
        for r in rows:
            name = f"{r['dataset']}-B{r['budget']}-seed{r['seed']}"
            tags = {"dataset": r["dataset"], "seed": str(r["seed"]), "budget": str(r["budget"])}
            with tracker.run(name, parent, tags) as child:
                tracker.metrics(child, {k.replace("/", "."): float(v) for k, v in r.items()
                                        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))})
        for path in (out / "results.jsonl", out / "summary.md"):
            tracker.artifact(parent, path)
    return parent


def main() -> None:
    """Parse arguments, run the missing jobs in parallel, write the summary, log to MLflow."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, required=True, help="benchmark table (ground truth and evaluator)")
    parser.add_argument("--space", default="nb201")
    parser.add_argument("--datasets", nargs="+", default=["cifar10"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[200])
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--max-flops", type=float, default=None, help="FLOPs budget (constraints.max_flops)")
    parser.add_argument("--constraint", action="append", default=[], help="any budget, e.g. max_latency_ms=5 "
                        "(with device=pixel3) or max_params=1e6; several at once")
    parser.add_argument("--evaluator", default="benchmark", help="benchmark, or a zero-cost proxy (zico, synflow, ...) "
                        "that drives search while the table judges")
    parser.add_argument("--proxy-data", default="digits", help="images the proxy scores networks on")
    parser.add_argument("--downstream", nargs="*", type=int, default=list(DOWNSTREAM), help="extra evaluations N")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("shrink_vs_search"))
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--override", action="append", default=[],
                        help="extra pipeline override, e.g. shrink.pockets.target_size=50")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = [json.loads(line) for line in results.read_text().splitlines() if line.strip()] if results.exists() else []
    finished = {(r["dataset"], r["budget"], r["seed"]) for r in done}
    jobs = [{"space": args.space, "table": str(args.table.resolve()), "dataset": d, "budget": b, "seed": s,
             "max_flops": args.max_flops, "constraints": args.constraint, "downstream": args.downstream,
             "evaluator": args.evaluator,
             "proxy_data": args.proxy_data, "uri": args.tracking_uri, "extra": args.override,
             "run_dir": str((args.out / "runs" / f"{d}-B{b}-seed{s}").resolve())}
            for d in args.datasets for b in args.budgets for s in parse_seeds(args.seeds) if (d, b, s) not in finished]
    print(f"{len(done)} jobs done, {len(jobs)} to run", flush=True)
    from pipeline.tracking import Tracker

    Tracker(args.tracking_uri, "shrink-vs-search-runs")  # create the store once, before workers race to migrate it
    started = time.time()
    with ProcessPoolExecutor(args.workers) as pool, results.open("a") as sink:
        for i, row in enumerate(pool.map(one_job, jobs), start=1):
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            done.append(row)
            print(f"[{i}/{len(jobs)} {time.time() - started:.0f}s] {row['dataset']} B={row['budget']} seed={row['seed']}: "
                  f"spent {row['spent']}, size {row['emitted_size']}, emitted mean {row.get('lissnas/mean', float('nan')):.2f} "
                  f"vs REA region {row.get('rea_region/mean', float('nan')):.2f}", flush=True)
    text = summary(done)
    tmp = args.out / "summary.md.tmp"
    tmp.write_text(text)
    os.replace(tmp, args.out / "summary.md")
    print(text)
    print(f"MLflow run: {log_mlflow(args.tracking_uri, done, args.out, args)}")


if __name__ == "__main__":
    main()
