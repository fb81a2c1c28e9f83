"""Shrink once, search many: is a shrunk space made on a cheap source a better object to transfer than the plain ones?

    python experiments/transfer/run.py --table benchmarks/nb201.csv --seeds 0-9 --workers 2

Per seed and source (NB201; the source shrink is `python -m pipeline` with the benchmark evaluator,
budget 200, default settings):
- source ``cifar10``: validation accuracy on CIFAR-10; targets CIFAR-100 and ImageNet16-120;
- sources ``params`` and ``flops``: data-independent proxies read from the same table (valid on any
  dataset); target CIFAR-10;
- source ``pixel3``: CIFAR-10 under a pixel3 latency budget; target CIFAR-10 under an eyeriss budget;
- source ``fashion_e1``: a cheaper fidelity, Fashion-MNIST validation accuracy after 1 of 2 epochs
  (``val_acc_e1`` of ``--fashion-table``, built by ``pipeline.bench``); target the 2-epoch result.
Data-dependent proxies (zico, naswot, snip, grad_norm) are left out: they need the target's images,
which this table-only study does not have.
On each target, with N new target evaluations (validation accuracy; test accuracy only judges), REA
runs in five domains built from the same source evaluations:
- ``shrunk``: the LISSNAS space emitted on the source;
- ``full``: the whole space (no transfer);
- ``rea_topk``: REA's own top-K of 200 source evaluations (K = the shrunk space's size);
- ``box``: the bounding box (per-decision option set) of the source REA's 10 best archs, as
  syne-tune's BoundingBox transfer scheduler does;
- ``warm``: the full space, REA's population seeded with the source REA's best archs (each costs
  one target evaluation).
REA's population is min(50, N // 2) with tournament max(2, population // 5) in every domain, so
N = 25 still evolves. Regret: best target test accuracy minus the test accuracy of the arch with
the best target validation accuracy among those evaluated; ``val_regret`` is against the
best-validation arch's test accuracy instead (they differ on ImageNet16-120).
Rows are appended to results.jsonl as they finish; a rerun skips finished (seed, source) pairs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.common import compose_cfg, paired, parse_seeds, top_k  # noqa: E402

SOURCES = {"cifar10": ("cifar10", "val_acc", ("cifar100", "ImageNet16-120")),
           "params": ("cifar10", "params", ("cifar10",)),
           "flops": ("cifar10", "flops", ("cifar10",)),
           "pixel3": ("cifar10", "val_acc", ("cifar10",)),
           "fashion_e1": ("fashion_mnist", "val_acc_e1", ("fashion_mnist",))}
# Fidelity transfer: the shrink reads validation accuracy after 1 of 2 training epochs (half the cost of a target
# evaluation), the target search the full 2 epochs; the Fashion-MNIST NB201 table built here holds both.
OWN_TABLE = {"fashion_e1": "fashion_table"}  # a source whose rows live in another table: the argument naming it
# Device transfer: the shrink runs under a latency budget on one device, the target search under another's.
# Budgets: about the median latency on each device (pixel3 10.7 ms; eyeriss 5.1 ms), NB201 CIFAR-10 table.
DEVICES = {"pixel3": (("pixel3", 10.7), ("eyeriss", 5.1))}
ARMS = ("shrunk", "full", "rea_topk", "box", "warm")
NS = (25, 50, 100)
SOURCE_BUDGET = 200
BOX_TOP = 10


def shrink(table: Path, source: str, seed: int, out: Path, extra: list[str]) -> tuple[Any, list[tuple[str, float]]]:
    """Run the pipeline's shrink on the source; return the shrunk space and its evaluations (arch, score)."""
    from pipeline.artifacts import read_rows
    from pipeline.run import run
    from spaces.shrunk import ShrunkSpace

    dataset, metric, _ = SOURCES[source]
    run_dir = out / "runs" / f"{source}-s{seed}"
    if source in DEVICES:
        device, budget = DEVICES[source][0]
        extra = [f"constraints.max_latency_ms={budget}", f"constraints.device={device}", *extra]
    cfg = compose_cfg(["space=nb201", "evaluator=benchmark", f"evaluator.path={table}", f"dataset={dataset}",
                       f"evaluator.metric={metric}", f"seed={seed}", f"shrink.budget={SOURCE_BUDGET}", "supernet=none",
                       "progress=false", "ground_truth=null", "executor.workers=1",
                       f"tracking.uri=sqlite:///{out}/mlflow.db", "tracking.experiment=transfer-shrink", *extra])
    result = run(cfg, run_dir)
    history = [(r["arch"], r["score"]) for path in sorted(run_dir.glob("round_*/evaluate/scores.csv"))
               for r in read_rows(path) if math.isfinite(r["score"])]
    return ShrunkSpace.load(result.shrunk_space), history


def rea_settings(n: int) -> dict[str, int]:
    """Return REA's population and tournament for a budget of ``n`` (every domain the same)."""
    population = min(50, n // 2)
    return {"population": population, "tournament": max(2, population // 5)}


def job(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Shrink on one source for one seed, then search every target in every domain; return one row per (target, N)."""
    from pipeline.evaluators.benchmark import read_table
    from pipeline.searchers import BoxDomain, FeasibleDomain, FullDomain, MemberDomain, Oracle, ShrunkDomain, rea, table_score
    from spaces.nb201 import NB201Space

    source, seed, out = args["source"], int(args["seed"]), Path(args["out"])
    table = Path(args[OWN_TABLE.get(source, "table")])
    dataset, metric, targets = SOURCES[source]
    space = NB201Space()
    shrunk, history = shrink(table, source, seed, out, list(args.get("overrides", [])))
    source_table = read_table(table, space, dataset)
    (src_device, src_budget), (tgt_device, tgt_budget) = DEVICES.get(source, ((None, None), (None, None)))
    src_ok = (lambda a: source_table[a][f"latency_{src_device}"] <= src_budget) if src_device else (lambda a: True)
    source_rea = rea(FullDomain(space, src_ok), Oracle(table_score(source_table, metric), SOURCE_BUDGET),
                     np.random.default_rng([seed, 1]), **rea_settings(SOURCE_BUDGET))
    ranked = top_k(source_rea.history, len(source_rea.history))
    domains = {"shrunk": ShrunkDomain(shrunk), "full": FullDomain(space),
               "rea_topk": MemberDomain(space, ranked[: shrunk.size()]), "box": BoxDomain(space, ranked[:BOX_TOP])}
    rows = []
    for target in targets:
        rows_t = read_table(table, space, target)
        ok = (lambda a, rows=rows_t: rows[a][f"latency_{tgt_device}"] <= tgt_budget) if tgt_device else (lambda a: True)
        truth = {a: r["test_acc"] for a, r in rows_t.items() if ok(a)}
        best_test = max(truth.values())
        oracle_arch = max(truth, key=lambda a: (rows_t[a]["val_acc"], a))
        label = f"{target}@{tgt_device}" if tgt_device else target
        for n in args["ns"]:
            row = {"seed": seed, "source": source, "target": label, "n": n, "shrunk_size": shrunk.size(),
                   "box_size": domains["box"].size(), "source_evaluations": len(history)}
            for i, arm in enumerate(ARMS):
                domain = domains.get(arm, domains["full"])
                domain = FeasibleDomain(domain, ok) if tgt_device else domain
                initial = ranked[: rea_settings(n)["population"]] if arm == "warm" else ()
                try:
                    found = rea(domain, Oracle(table_score(rows_t), n), np.random.default_rng([seed, 100 + i, n]),
                                initial=initial, **rea_settings(n))
                except ValueError:  # no member of this domain meets the target's budget: it finds nothing
                    row.update({f"{arm}/regret": math.nan, f"{arm}/val_regret": math.nan, f"{arm}/spent": 0})
                    continue
                pick = max(found.cache, key=lambda a: (found.cache[a], a))
                row[f"{arm}/regret"] = best_test - truth[pick]
                row[f"{arm}/val_regret"] = truth[oracle_arch] - truth[pick]
                row[f"{arm}/spent"] = found.spent
            rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Return the markdown tables: regret per arm, and the shrunk space paired against each other arm."""
    lines = ["| source -> target | N | seeds | " + " | ".join(f"{a} regret" for a in ARMS) + " |",
             "|---|---|---|" + "---|" * len(ARMS)]
    pairs = ["| source -> target | N | " + " | ".join(f"shrunk vs {a}" for a in ARMS[1:]) + " |",
             "|---|---|" + "---|" * (len(ARMS) - 1)]
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["source"], r["target"], r["n"]), []).append(r)
    for (source, target, n), g in sorted(groups.items()):
        cells = [f"{np.nanmean([r[f'{a}/regret'] for r in g]):.2f} ± {np.nanstd([r[f'{a}/regret'] for r in g]):.2f}"
                 for a in ARMS]
        lines.append(f"| {source} -> {target} | {n} | {len(g)} | " + " | ".join(cells) + " |")
        pairs.append(f"| {source} -> {target} | {n} | "
                     + " | ".join(paired(g, "shrunk/regret", f"{a}/regret", higher_better=False, tol=0.005)
                                  for a in ARMS[1:]) + " |")
        if target == "ImageNet16-120":
            pairs.append(f"| {source} -> {target} (vs best-val arch) | {n} | "
                         + " | ".join(paired(g, "shrunk/val_regret", f"{a}/val_regret", higher_better=False, tol=0.005)
                                      for a in ARMS[1:]) + " |")
    legend = ("Regret in test-accuracy points (mean ± std over seeds); paired cells: shrunk mean ± std vs the "
              "other's (better/tied/worse for the shrunk space, ties within 0.005 points).")
    return "\n".join(["# Transfer: shrink once on a source, search the target with N evaluations", "", *lines, "",
                      *pairs, "", legend, ""])


def check_complete(table: Path) -> None:
    """Stop unless ``table`` covers every NB201 arch: a shrink may evaluate any of them."""
    from pipeline.evaluators.benchmark import read_table
    from spaces.nb201 import NB201Space

    space = NB201Space()
    covered = len(read_table(table, space, "fashion_mnist")) if table.is_file() else 0
    if covered < space.size():
        sys.exit(f"error: source fashion_e1 needs every NB201 arch in {table}; it holds {covered:,} of "
                 f"{space.size():,}: continue its build (experiments/fashion_mnist_table/README.md, n=15625)")


def main() -> None:
    """Run the missing (seed, source) jobs, append their rows, and write summary.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "nb201.csv",
                        help="the NB201 table with cifar10, cifar100 and ImageNet16-120 rows (pipeline.convert_nb201)")
    parser.add_argument("--fashion-table", type=Path, default=ROOT / "benchmarks" / "nb201_fashion_mnist.csv",
                        help="source fashion_e1: the Fashion-MNIST table (experiments/fashion_mnist_table), complete")
    parser.add_argument("--seeds", default="0-9")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--ns", default=",".join(map(str, NS)))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "transfer" / "results")
    parser.add_argument("--override", action="append", default=[],
                        help="a pipeline override of the source shrink (e.g. shrink.pockets.max_pockets=16); use its own --out")
    args = parser.parse_args()
    if not args.table.is_file():
        sys.exit(f"error: --table {args.table} not found; convert the NB201 release first "
                 "(python -m pipeline.convert_nb201 ... --out benchmarks/nb201.csv)")
    if "fashion_e1" in args.sources.split(","):
        check_complete(args.fashion_table)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r["seed"], r["source"]) for r in rows}
    ns = [int(n) for n in args.ns.split(",")]
    jobs = [{"table": str(args.table.resolve()), "fashion_table": str(args.fashion_table.resolve()), "source": s,
             "seed": seed, "out": str(args.out.resolve()), "ns": ns, "overrides": args.override}
            for seed in parse_seeds(args.seeds) for s in args.sources.split(",") if (seed, s) not in done]
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for new in pool.map(job, jobs):
            with results.open("a") as handle:
                handle.writelines(json.dumps(r) + "\n" for r in new)
            rows += new
            print(f"seed {new[0]['seed']} {new[0]['source']}: "
                  + ", ".join(f"{r['target']} N={r['n']} shrunk {r['shrunk/regret']:.2f} full {r['full/regret']:.2f}"
                              for r in new if r["n"] == ns[0]), flush=True)
    (args.out / "summary.md").write_text(summary(rows))
    print(summary(rows))


if __name__ == "__main__":
    main()
