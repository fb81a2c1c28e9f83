"""Does shrinking help a downstream searcher? Optuna TPE and random search, full NB201 vs shrunk space.

For each dataset and seed: shrink NB201 with LISSNAS (benchmark evaluator, default budget), then
run each sampler for the same number of trials on the full space (one categorical per edge) and on
the shrunk space (one categorical over its arch ids, pocket seeds enqueued first; ``shrunk-noseed`` without
them, to see the sampler alone). A further arm
gives the full space the shrinkage's evaluations on top (``full+``), so the comparison is also fair
in total lookups. Searches optimise validation accuracy; we report the test accuracy of the best
trial by validation so far (regret = global best test accuracy minus it).

Usage: python experiments/downstream_optuna/run.py --table benchmarks/nb201.csv [--seeds 5] [--trials 50]
Logs one MLflow run per (dataset, seed, sampler, space) under one parent run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the project root

from experiments.common import compose_cfg  # noqa: E402
from pipeline.evaluators.benchmark import read_table  # noqa: E402
from pipeline.run import run  # noqa: E402
from pipeline.tracking import Tracker  # noqa: E402
from spaces.nb201 import NB201Space  # noqa: E402
from spaces.optuna_adapter import enqueue_seeds, suggest_arch, suggest_full, table_objective  # noqa: E402
from spaces.shrunk import ShrunkSpace  # noqa: E402

ARMS = ("full", "full+", "shrunk", "shrunk-noseed")


def shrink(table: Path, dataset: str, seed: int, uri: str, workdir: Path) -> tuple[ShrunkSpace, int]:
    """Run LISSNAS on the benchmark; return the shrunk space and the lookups it spent."""
    cfg = compose_cfg(["evaluator=benchmark", f"evaluator.path={table}", f"dataset={dataset}", f"seed={seed}",
                       "progress=false", f"tracking.uri={uri}", "tracking.experiment=downstream-optuna-shrink"])
    result = run(cfg, workdir / f"{dataset}-{seed}")
    return ShrunkSpace.load(result.shrunk_space), int(result.rounds[-1]["evaluated_total"])


def search(sampler_name: str, arm: str, shrunk: ShrunkSpace, table: dict, seed: int, trials: int) -> list[float]:
    """Run one study; return the test accuracy of the best-by-validation trial after each trial."""
    sampler = optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    if arm.startswith("shrunk"):
        if arm == "shrunk":
            enqueue_seeds(study, shrunk)
        objective = table_objective(table, lambda t: suggest_arch(t, shrunk), shrunk.base)
    else:
        objective = table_objective(table, lambda t: suggest_full(t, shrunk.base), shrunk.base)
    study.optimize(objective, n_trials=trials)
    curve, best_val, best_test = [], -np.inf, np.nan
    for trial in study.trials:
        if trial.value > best_val:
            best_val, best_test = trial.value, trial.user_attrs["test_acc"]
        curve.append(best_test)
    return curve


def main() -> None:
    """Run the grid, log it, print the table, plot the curves."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "ImageNet16-120"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--tracking-uri", default=None, help="default: a fresh SQLite store in a temp folder")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "figures")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="downstream-"))
    uri = args.tracking_uri or f"sqlite:///{workdir}/mlflow.db"
    tracker = Tracker(uri, "downstream-optuna")
    curves: dict[tuple[str, str, str], list[list[float]]] = defaultdict(list)
    best_test: dict[str, float] = {}
    with tracker.run(f"downstream trials={args.trials}", None, {"sweep": "true"}) as parent:
        for dataset in args.datasets:
            table = read_table(args.table, NB201Space(), dataset)
            best_test[dataset] = max(r["test_acc"] for r in table.values())
            for seed in range(args.seeds):
                shrunk, spent = shrink(args.table, dataset, seed, uri, workdir)
                for sampler in ("tpe", "random"):
                    for arm in ARMS:
                        n = args.trials + spent if arm == "full+" else args.trials
                        curve = search(sampler, arm, shrunk, table, seed, n)
                        curves[(dataset, sampler, arm)].append(curve)
                        log(tracker, parent, dataset, seed, sampler, arm, curve, best_test[dataset], spent)
        report(curves, best_test, args.trials)
        plot(curves, best_test, args.trials, args.out)
        tracker.artifacts(parent, args.out, "figures")
    print(f"MLflow store: {uri}")


def log(tracker: Tracker, parent: str, dataset: str, seed: int, sampler: str, arm: str, curve: list[float],
        best: float, spent: int) -> None:
    """Log one study's best-so-far curve as a nested run."""
    tags = {"dataset": dataset, "seed": str(seed), "sampler": sampler, "space": arm}
    with tracker.run(f"{dataset}/{sampler}/{arm}/seed{seed}", parent, tags) as run_id:
        tracker.params(run_id, {"trials": len(curve), "shrink_lookups": spent})
        for step, value in enumerate(curve):
            tracker.metrics(run_id, {"best_test_acc": value, "regret": best - value}, step=step)


def report(curves: dict, best_test: dict[str, float], trials: int) -> None:
    """Print mean +/- std of the final test accuracy and regret per (dataset, sampler, arm)."""
    print(f"| dataset | sampler | space | trials | best test acc after {trials} | regret | at trial 10 |")
    print("|---|---|---|---|---|---|---|")
    for (dataset, sampler, arm), runs in sorted(curves.items()):
        final = np.array([c[trials - 1] if arm != "full+" else c[-1] for c in runs])
        early = np.array([c[9] for c in runs])
        n = "+".join(["N", "shrink"]) if arm == "full+" else "N"
        print(f"| {dataset} | {sampler} | {arm} | {n} | {final.mean():.2f} ± {final.std():.2f} | "
              f"{(best_test[dataset] - final).mean():.2f} | {early.mean():.2f} |")


def plot(curves: dict, best_test: dict[str, float], trials: int, out: Path) -> None:
    """Plot mean best-so-far regret against trials, one figure per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    for dataset in sorted({d for d, _, _ in curves}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (d, sampler, arm), runs in sorted(curves.items()):
            if d != dataset:
                continue
            length = min(len(c) for c in runs)
            regret = best_test[dataset] - np.mean([c[:length] for c in runs], axis=0)
            ax.plot(np.arange(1, length + 1), regret, label=f"{sampler} / {arm}",
                    linestyle="--" if arm == "full+" else "-")
        ax.axvline(trials, color="grey", linewidth=0.8)
        ax.set(title=f"NB201 {dataset}: Optuna on full vs shrunk space", xlabel="trial",
               ylabel="test-accuracy regret (%)", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"regret_{dataset}.png", dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
