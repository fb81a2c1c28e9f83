"""How well do the zero-cost proxies rank NB201 cells? Spearman / Kendall-tau against ground truth.

Part A (same data for proxy and truth): every proxy on real digits batches, against the digits
benchmark table built by ``python -m pipeline.bench`` (NB201, C=8, N=1, 4 epochs).
Part C: the data-dependent proxies on that CIFAR network too, fed real digits resized to 3x32x32
(CIFAR cannot be downloaded here), against NB201's CIFAR ground truth.
Part B (NAS-Bench-201 on CIFAR): the data-free proxies (params, FLOPs, synflow) on the benchmark
network (C=16, N=5, 3x32x32) for the archs of NAS-Bench-Suite-Zero's NB201 sample, against the
NB201 test accuracy; next to them, the correlations of NAS-Bench-Suite-Zero's own reference scores
on the same archs, and the rank agreement between our scores and theirs.

Usage: python experiments/zero_cost/run.py --digits-table benchmarks/nb201_digits.csv \
           --nb201-table benchmarks/nb201.csv --zc ../shared/data/zc_nasbench201.json [--n 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from pipeline.datasets import Digits
from pipeline.evaluators.benchmark import read_table
from pipeline.evaluators.proxies import PROXIES, ProxyEvaluator, synflow
from pipeline.tracking import Tracker
from spaces.nb201 import NB201Space

NASLIB_NAMES = {"params": "params", "flops": "flops", "synflow": "synflow", "naswot": "nwot", "snip": "snip",
                "grad_norm": "grad_norm", "jacov": "jacov", "fisher": "fisher", "grasp": "grasp"}
CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def correlate(scores: list[float], truth: list[float]) -> tuple[float, float]:
    """Return (Spearman rho, Kendall tau-b), non-finite scores ranked lowest."""
    x = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf, posinf=-np.inf)
    x[~np.isfinite(x)] = np.min(x[np.isfinite(x)]) - 1 if np.isfinite(x).any() else 0
    return float(stats.spearmanr(x, truth).statistic), float(stats.kendalltau(x, truth).statistic)


def part_a(table: Path, n: int, seed: int) -> list[dict]:
    """Every proxy on digits vs the digits table."""
    space = NB201Space(C=8, N=1)
    truth = read_table(table, space, "digits")
    rng = np.random.default_rng(seed)
    archs = [list(truth)[i] for i in np.sort(rng.choice(len(truth), min(n, len(truth)), replace=False))]
    rows = []
    for proxy in PROXIES:
        evaluator = ProxyEvaluator(space, Digits(), proxy, seed=seed)
        start = time.perf_counter()
        values = [evaluator.evaluate(space.from_str(a))[proxy] for a in archs]
        seconds = (time.perf_counter() - start) / len(archs)
        rho, tau = correlate(values, [truth[a]["val_acc"] for a in archs])
        rho_t, tau_t = correlate(values, [truth[a]["test_acc"] for a in archs])
        rows.append({"part": "A digits", "proxy": proxy, "n": len(archs), "spearman_val": rho, "kendall_val": tau,
                     "spearman_test": rho_t, "kendall_test": tau_t, "seconds_per_arch": seconds,
                     "non_finite": int(sum(not np.isfinite(v) for v in values))})
        print(_line(rows[-1]), flush=True)
    return rows


def part_b(nb201_table: Path, zc_path: Path, limit: int | None) -> list[dict]:
    """Data-free proxies on the CIFAR benchmark network vs NB201 truth, beside the NASLib references."""
    space = NB201Space()
    reference = json.loads(zc_path.read_text())
    rows = []
    for dataset, entries in reference.items():
        truth = read_table(nb201_table, space, dataset)
        keys = list(entries)[:limit]
        archs = [space.from_compact(tuple(int(i) for i in k.strip("()").split(","))) for k in keys]
        acc = [truth[space.to_str(a)]["test_acc"] for a in archs]
        ours = {"params": [], "flops": [], "synflow": []}
        start = time.perf_counter()
        for arch in archs:
            params, flops = space.costs(arch, (3, 32, 32) if dataset != "ImageNet16-120" else (3, 16, 16), CLASSES[dataset])
            ours["params"].append(params)
            ours["flops"].append(flops)
        cost_seconds = (time.perf_counter() - start) / len(archs)
        start = time.perf_counter()
        if dataset == "cifar10":
            side = 32
            for i, arch in enumerate(archs):
                torch.manual_seed(i)
                ours["synflow"].append(synflow(space.build_model(arch, (3, side, side), CLASSES[dataset]), (3, side, side)))
        synflow_seconds = (time.perf_counter() - start) / len(archs)
        for proxy, naslib in NASLIB_NAMES.items():
            theirs = [entries[k][naslib]["score"] for k in keys] if naslib in entries[keys[0]] else None
            mine = ours.get(proxy) or None
            row = {"part": f"B {dataset}", "proxy": proxy, "n": len(keys)}
            if mine:
                row["spearman_test"], row["kendall_test"] = correlate(mine, acc)
                row["seconds_per_arch"] = synflow_seconds if proxy == "synflow" else cost_seconds
            if theirs:
                row["naslib_spearman_test"], row["naslib_kendall_test"] = correlate(theirs, acc)
            if mine and theirs:
                row["agreement_spearman"] = float(stats.spearmanr(mine, theirs).statistic)
            if len(row) > 3:
                rows.append(row)
                print(_line(row), flush=True)
    return rows


def part_c(nb201_table: Path, zc_path: Path, n: int, seed: int) -> list[dict]:
    """Data-dependent proxies on the CIFAR benchmark network, fed real digits resized to 3x32x32.

    CIFAR batches cannot be downloaded here; digits upsampled to CIFAR's shape are real images
    through the real benchmark network, so the ranking each proxy produces can be set against
    NB201's CIFAR ground truth (the input distribution differs: read these as a lower bound).
    """
    space = NB201Space()
    keys = list(json.loads(zc_path.read_text())["cifar10"])[:n]
    archs = [space.from_compact(tuple(int(i) for i in k.strip("()").split(","))) for k in keys]
    truths = {d: read_table(nb201_table, space, d) for d in CLASSES}
    rows = []
    for proxy in ("zico", "naswot", "snip", "grad_norm"):  # synflow and params: part B
        evaluator = ProxyEvaluator(space, Digits(size=32, channels=3), proxy, seed=seed, batch_size=32)
        start = time.perf_counter()
        values = [evaluator.evaluate(a)[proxy] for a in archs]
        seconds = (time.perf_counter() - start) / len(archs)
        for dataset, truth in truths.items():
            rho, tau = correlate(values, [truth[space.to_str(a)]["test_acc"] for a in archs])
            rows.append({"part": f"C {dataset} (digits 3x32x32 input)", "proxy": proxy, "n": len(archs),
                         "spearman_test": rho, "kendall_test": tau, "seconds_per_arch": seconds})
            print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict) -> str:
    """Format one result row."""
    return "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def main() -> None:
    """Run both parts, log them to MLflow and print markdown tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--digits-table", type=Path, required=True)
    parser.add_argument("--nb201-table", type=Path, required=True)
    parser.add_argument("--zc", type=Path, required=True, help="NAS-Bench-Suite-Zero zc_nasbench201.json")
    parser.add_argument("--n", type=int, default=300, help="archs sampled from the digits table")
    parser.add_argument("--limit", type=int, default=None, help="archs per dataset in part B (default: all)")
    parser.add_argument("--n-cifar", type=int, default=100, help="archs in part C (CIFAR network, digits input)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", nargs="+", default=["A", "B", "C"], choices=["A", "B", "C"])
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args()
    uri = args.tracking_uri or f"sqlite:///{tempfile.mkdtemp(prefix='zc-')}/mlflow.db"
    tracker = Tracker(uri, "zero-cost-correlation")
    with tracker.run("zero-cost correlation", None, {"seed": str(args.seed)}) as parent:
        rows = []
        if "A" in args.parts:
            rows += part_a(args.digits_table, args.n, args.seed)
        if "B" in args.parts:
            rows += part_b(args.nb201_table, args.zc, args.limit)
        if "C" in args.parts:
            rows += part_c(args.nb201_table, args.zc, args.n_cifar, args.seed)
        for row in rows:
            with tracker.run(f"{row['part']}/{row['proxy']}", parent, {"part": row["part"], "proxy": row["proxy"]}) as rid:
                tracker.metrics(rid, {k: v for k, v in row.items() if isinstance(v, int | float)})
    print(f"MLflow store: {uri}")


if __name__ == "__main__":
    main()
