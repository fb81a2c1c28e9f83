"""Read one NB201 shrinkage sweep back from MLflow: comparison table and EDF plots.

Usage: python experiments/nb201_shrinkage/analyze.py --table benchmarks/nb201.csv
       [--tracking-uri sqlite:///mlflow.db] [--experiment nb201-shrinkage] [--sweep RUN_ID] [--out DIR]
Without --sweep, the newest sweep run of the experiment is analysed.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from pipeline.evaluators.benchmark import read_table
from pipeline.stages.emit import edf_curve
from spaces.nb201 import NB201Space

METHODS = ("lissnas", "op_pruning", "regnet", "topk", "random")
COLUMNS = {  # metric -> header
    "result/size": "size", "space/pockets": "pockets", "result/mean_test_acc": "mean acc",
    "space/gt_median": "median acc", "result/best_test_acc": "best acc", "result/regret": "regret",
    "space/recall_top0.1pct": "R@0.1%", "result/recall_top1pct": "R@1%", "space/recall_top5pct": "R@5%",
    "space/shrink_index": "shrink idx", "space/kendall_tau": "tau", "space/mean_distance": "mean dist",
    "space/op_entropy": "op entropy",
}


def sweep_runs(client: MlflowClient, experiment: str, sweep: str | None) -> tuple[str, list]:
    """Return the sweep run id and its job runs."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"error: no MLflow experiment {experiment!r}; run the sweep first")
    if sweep is None:
        sweeps = client.search_runs([exp.experiment_id], "tags.sweep = 'true'", order_by=["attributes.start_time DESC"])
        if not sweeps:
            raise SystemExit(f"error: experiment {experiment!r} has no sweep run; pass --sweep RUN_ID")
        sweep = sweeps[0].info.run_id
    jobs = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{sweep}'", max_results=5000)
    return sweep, jobs


def table(jobs: list) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Group final metrics by (dataset, method)."""
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for job in jobs:
        key = (job.data.tags.get("dataset", "?"), job.data.tags.get("method", "?"))
        for metric in COLUMNS:
            if metric in job.data.metrics:
                groups[key][metric].append(job.data.metrics[metric])
        groups[key]["_seeds"].append(float(job.data.tags.get("seed", "nan")))
    return groups


def print_table(groups: dict[tuple[str, str], dict[str, list[float]]]) -> None:
    """Print mean +/- std per (dataset, method) as a markdown table."""
    print("| dataset | method | seeds | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for dataset in sorted({d for d, _ in groups}):
        for method in [m for m in METHODS if (dataset, m) in groups]:
            row = groups[(dataset, method)]
            cells = [f"{np.mean(row[m]):.2f} ± {np.std(row[m]):.2f}" if row.get(m) else "-" for m in COLUMNS]
            print(f"| {dataset} | {method} | {len(row['_seeds'])} | " + " | ".join(cells) + " |")


def plot_edfs(client: MlflowClient, jobs: list, truth_table: Path, out: Path) -> None:
    """Plot, per dataset, the test-accuracy EDF of the full space vs each method's shrunk space (seed 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    by_dataset = defaultdict(list)
    for job in jobs:
        if job.data.tags.get("seed") == "0":
            by_dataset[job.data.tags.get("dataset")].append(job)
    for dataset, runs in sorted(by_dataset.items()):
        truth = {a: r["test_acc"] for a, r in read_table(truth_table, NB201Space(), dataset).items()}
        fig, ax = plt.subplots(figsize=(6, 4))
        edf_curve(ax, list(truth.values()), f"full space (n={len(truth)})")
        for job in sorted(runs, key=lambda j: METHODS.index(j.data.tags.get("method", "random"))):
            path = client.download_artifacts(job.info.run_id, "shrunk_space.json", str(out))
            members = [m["arch"] for p in json.loads(Path(path).read_text())["pockets"] for m in p["members"]]
            edf_curve(ax, [truth[a] for a in dict.fromkeys(members)], f"{job.data.tags['method']} (n={len(set(members))})")
        ax.set(title=f"NB201 {dataset}: test accuracy EDF (seed 0)", xlabel="test accuracy (%)", ylabel="fraction <= x",
               xlim=(max(0, np.percentile(list(truth.values()), 5)), max(truth.values()) + 0.5))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(out / f"edf_{dataset}.png", dpi=110)
        plt.close(fig)
        (out / "shrunk_space.json").unlink(missing_ok=True)


def main() -> None:
    """Parse arguments, print the table, save the plots."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", type=Path, required=True, help="NB201 benchmark table (ground truth)")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default="nb201-shrinkage")
    parser.add_argument("--sweep", default=None, help="sweep run id (default: newest)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    args = parser.parse_args()
    client = MlflowClient(args.tracking_uri)
    sweep, jobs = sweep_runs(client, args.experiment, args.sweep)
    print(f"sweep {sweep}: {len(jobs)} runs")
    print_table(table(jobs))
    plot_edfs(client, jobs, args.table, args.out)
    print(f"EDF plots in {args.out}")


if __name__ == "__main__":
    main()
