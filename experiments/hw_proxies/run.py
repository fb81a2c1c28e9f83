"""Hardware-aware proxy comparison on NB201: how well does each zero-cost proxy rank the archs a latency budget allows?

    python experiments/hw_proxies/run.py            # needs ../shared/data

For NB201 (CIFAR-10, CIFAR-100, ImageNet16-120), devices pixel3, raspi4, eyeriss and a GPU at
batch 1 (1080ti_1), and latency budgets at the 25th and 50th percentile of the device's latency
over all 15,625 cells (plus no budget, for reference): among the archs of NAS-Bench-Suite-Zero's
NB201 sample (724 / 725 / 724) that meet the budget, Kendall's tau and Spearman's rho of every
proxy score vs NB201 ground-truth test accuracy (mean over seeds, from the official export).

Proxy scores are NAS-Bench-Suite-Zero's reference scores (``zc_nasbench201.json``), computed on
real CIFAR / ImageNet16-120 batches: this project's data-dependent proxies need those images,
which cannot be downloaded here (its synflow / params / FLOPs reproduce the reference rankings,
agreement 0.996-1.000: ``experiments/zero_cost``). ``params`` is the parameter count. Spread:
10 bootstrap resamples of the feasible archs (seeds 0-9), mean +- std; the point estimate on
all feasible archs is in ``results/hw_proxies.json``. MLflow experiment ``hw-proxies``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from spaces.files import write_json_atomic  # noqa: E402
from spaces.nb201 import NB201Space  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HERE = Path(__file__).parent
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
DEVICES = ("pixel3", "raspi4", "eyeriss", "1080ti_1")
PROXIES = ("synflow", "nwot", "snip", "grad_norm", "grasp", "fisher", "jacov", "epe_nas", "l2_norm", "plain",
           "flops", "params")


def truth() -> dict[str, dict[str, float]]:
    """Return dataset -> NB201 string -> test accuracy (the shared official export, converted)."""
    from pipeline.convert_nb201 import convert
    from pipeline.evaluators.benchmark import read_table

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nb201.csv"
        convert([SHARED / f"nasbench201_{d}.csv" for d in DATASETS], out, costs=False)
        return {d: {a: r["test_acc"] for a, r in read_table(out, NB201Space(), d).items()} for d in DATASETS}


def latency() -> dict[str, dict[str, float]]:
    """Return device -> NB201 string -> latency in ms."""
    space = NB201Space()
    out: dict[str, dict[str, float]] = {d: {} for d in DEVICES}
    with (SHARED / "nb201_latency_ms.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            arch = space.to_str(space.from_str(row["arch"]))
            for device in DEVICES:
                out[device][arch] = float(row[device])
    return out


def proxy_scores() -> dict[str, dict[str, dict[str, float]]]:
    """Return dataset -> NB201 string -> proxy -> reference score (NASLib tuples converted)."""
    space = NB201Space()
    data = json.loads((SHARED / "zc_nasbench201.json").read_text())
    return {d: {space.to_str(space.from_compact(list(ast.literal_eval(key)))): {p: entry[p]["score"] for p in PROXIES}
                for key, entry in data[d].items()} for d in DATASETS}


def correlations(archs: list[str], scores: dict[str, dict[str, float]], acc: dict[str, float],
                 rng: np.random.Generator | None = None) -> dict[str, tuple[float, float]]:
    """Return proxy -> (Kendall, Spearman) over ``archs`` (a bootstrap resample when ``rng`` is given)."""
    pick = archs if rng is None else [archs[i] for i in rng.integers(len(archs), size=len(archs))]
    y = np.array([acc[a] for a in pick])
    return {p: (stats.kendalltau([scores[a][p] for a in pick], y).statistic,
                stats.spearmanr([scores[a][p] for a in pick], y).statistic) for p in PROXIES}


def main() -> None:
    """Compute every (dataset, device, budget) cell, write JSON and the README table, log to MLflow."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    args = parser.parse_args()
    acc, lat, zc = truth(), latency(), proxy_scores()
    rows = []
    for dataset in DATASETS:
        sample = [a for a in zc[dataset] if a in acc[dataset]]
        for device in DEVICES:
            every = np.array(list(lat[device].values()))
            for label, budget in (("none", np.inf), ("p25", np.percentile(every, 25)), ("p50", np.percentile(every, 50))):
                if label == "none" and device != DEVICES[0]:
                    continue  # no budget is the same for every device: one row set is enough
                feasible = [a for a in sample if lat[device][a] <= budget]
                point = correlations(feasible, zc[dataset], acc[dataset])
                boot = [correlations(feasible, zc[dataset], acc[dataset], np.random.default_rng(s)) for s in range(10)]
                for p in PROXIES:
                    taus = [b[p][0] for b in boot]
                    rows.append({"dataset": dataset, "device": device, "budget": label, "budget_ms": float(budget),
                                 "feasible": len(feasible), "proxy": p, "kendall": point[p][0], "spearman": point[p][1],
                                 "kendall_boot_mean": float(np.mean(taus)), "kendall_boot_std": float(np.std(taus))})
    (HERE / "results").mkdir(exist_ok=True)
    write_json_atomic(HERE / "results" / "hw_proxies.json", rows)
    print(markdown(rows))
    log_mlflow(rows, args.tracking_uri)


def markdown(rows: list[dict]) -> str:
    """Return one table per dataset: proxies x (device, budget), Kendall mean +- std over bootstrap seeds."""
    out = []
    for dataset in DATASETS:
        cells = list(dict.fromkeys((r["device"], r["budget"]) for r in rows if r["dataset"] == dataset))
        head = [f"{d} {b}" if b != "none" else "no budget" for d, b in cells]
        feasible = {(r["device"], r["budget"]): r["feasible"] for r in rows if r["dataset"] == dataset}
        out += [f"### {dataset}", "", "| proxy | " + " | ".join(head) + " |", "|---|" + "---|" * len(cells),
                "| feasible archs | " + " | ".join(str(feasible[c]) for c in cells) + " |"]
        for p in PROXIES:
            got = {(r["device"], r["budget"]): r for r in rows if r["dataset"] == dataset and r["proxy"] == p}
            out.append(f"| {p} | " + " | ".join(f"{got[c]['kendall']:.3f} ± {got[c]['kendall_boot_std']:.3f}"
                                                 for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def log_mlflow(rows: list[dict], uri: str) -> None:
    """Log one MLflow run per (dataset, device, budget) with each proxy's Kendall and Spearman."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("hw-proxies")
    for key in dict.fromkeys((r["dataset"], r["device"], r["budget"]) for r in rows):
        group = [r for r in rows if (r["dataset"], r["device"], r["budget"]) == key]
        with mlflow.start_run(run_name="-".join(key)):
            mlflow.log_params({"dataset": key[0], "device": key[1], "budget": key[2],
                               "budget_ms": group[0]["budget_ms"], "feasible": group[0]["feasible"]})
            mlflow.log_metrics({f"{m}_{r['proxy']}": r[m] for r in group for m in ("kendall", "spearman")})


if __name__ == "__main__":
    main()
