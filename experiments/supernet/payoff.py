"""Does a one-shot supernet trained in the shrunk space rank and find better than one trained elsewhere?

For every seed, four spaces are made with the same evaluation budget and the ``train`` evaluator
on the same data (stand-alone trainings under one protocol, kept in a benchmark table through
``evaluator.table``, so each training is done once across spaces, seeds and reruns):

- ``lissnas``: the space the pipeline emits (``shrink=lissnas``);
- ``rea_topk``: the best archs (by validation) of regularized evolution with the same budget,
  as many as LISSNAS emitted;
- ``op_pruning`` and ``regnet``: the pipeline's baseline shrinkers (``shrink.refine.target_size``
  set to the LISSNAS size, so no method is smaller by default);
- ``full``: the whole space.

In each space a SPOS supernet is trained with the same initial weights, images, epochs and data
order; paths are drawn uniformly from the space. It then scores (inherited weights, BN
recalibrated, validation images) up to ``--inside`` members of its own space and a common uniform
sample of the full space (the same archs for every space of a seed), and evolution searches the
space with the supernet's score. Ground truth is the stand-alone test accuracy under the table's
protocol (trained on demand when the table lacks an arch, then appended), never used to steer.

Then every supernet of the seed ranks every shrunk space's member sample (``cross.jsonl``): on the
members of a shrunk space, does the supernet trained there rank them better than the one trained
on the full space? That is the claim of LISSNAS, ABS and NSE, judged like for like.

Rows go to ``results.jsonl`` and ``cross.jsonl`` (append-only; a rerun skips finished work and
resumes runs and checkpoints), the paired summary to ``summary.md``, each new row to MLflow
(experiment ``supernet-payoff``).

Usage (the CPU protocol of benchmarks/nb201_fashion_mnist.csv):
  python experiments/supernet/payoff.py --seeds 0-4 --out experiments/supernet/results/payoff
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from experiments.common import compose_cfg, parse_seeds  # noqa: E402

SPACES = ("lissnas", "rea_topk", "op_pruning", "regnet", "full")
# The protocol of benchmarks/nb201_fashion_mnist.csv (its README says why): CPU-sized NB201 on Fashion-MNIST.
CPU_PROTOCOL = ["space=nb201", "dataset=fashion_mnist", "dataset.resolution=8", "dataset.n_train=20000",
                "dataset.n_val=10000", "space.C=8", "space.N=1", "evaluator=train", "evaluator.epochs=2",
                "evaluator.batch_size=128", "evaluator.lr=0.1", "evaluator.record_epochs=[1]"]


@dataclass(frozen=True)
class Setup:
    """What every (seed, space) shares: the protocol, the budget and the supernet's schedule."""

    protocol: list[str]
    table: Path
    budget: int
    size: int
    epochs: int
    batch_size: int
    lr: float
    inside: int
    uniform: int
    uniform_pool: int
    workers: int
    out: Path


def base_overrides(setup: Setup, seed: int) -> list[str]:
    """Return the overrides every pipeline run of this seed shares."""
    return [*setup.protocol, f"evaluator.table={setup.table}", "evaluator.seed=0", f"seed={seed}",
            f"shrink.budget={setup.budget}", "supernet=none", "progress=false", f"executor.workers={setup.workers}",
            f"tracking.uri=sqlite:///{setup.out}/mlflow.db", "tracking.experiment=supernet-payoff-shrink"]


def shrink(setup: Setup, seed: int, method: str, extra: list[str]) -> list[str]:
    """Run (or resume) one shrinkage run and return the emitted space's members."""
    from pipeline.run import run
    from spaces.shrunk import ShrunkSpace

    run_dir = setup.out / "runs" / f"seed{seed}" / method
    with open(os.devnull, "w") as quiet:
        stdout, sys.stdout = sys.stdout, quiet
        try:
            result = run(compose_cfg([*base_overrides(setup, seed), f"shrink={method}", *extra]), run_dir)
        finally:
            sys.stdout = stdout
    return ShrunkSpace.load(result.shrunk_space).arch_strs()


def rea_topk(setup: Setup, seed: int, evaluator: Any, k: int) -> list[str]:
    """Return the best ``k`` archs (by validation) of REA with the same budget and evaluator."""
    from pipeline.executors import LocalExecutor
    from pipeline.searchers import FullDomain, evaluator_oracle, rea

    oracle = evaluator_oracle(evaluator, LocalExecutor(workers=setup.workers), setup.budget)
    rea(FullDomain(evaluator.space), oracle, np.random.default_rng([seed, 1]))
    return [a for a, _ in sorted(oracle.history, key=lambda h: (-h[1], h[0]))[:k]]


def listed(space: Any, archs: list[str]) -> Any:
    """Return a shrunk space holding exactly ``archs`` (one explicit pocket)."""
    from spaces.shrunk import Pocket, ShrunkSpace

    pocket = Pocket(0, archs[0], None, 0, tuple((a, None) for a in archs))
    return ShrunkSpace(space, [pocket])


class Truth:
    """Arch -> its stand-alone metrics under the protocol: read from the table, else trained (in parallel) and appended."""

    def __init__(self, evaluator: Any, workers: int) -> None:
        from pipeline.executors import LocalExecutor

        self.evaluator, self.executor = evaluator, LocalExecutor(workers=workers)
        self.memo: dict[str, dict[str, float]] = {}

    def prefetch(self, archs: list[str]) -> None:
        """Train the archs not known yet, ``workers`` at a time."""
        from pipeline.executors import Failure

        todo = [a for a in dict.fromkeys(archs) if a not in self.memo]
        space = self.evaluator.space
        for arch, result in zip(todo, self.executor.map(self.evaluator, [space.from_str(a) for a in todo]), strict=True):
            if isinstance(result, Failure):
                raise RuntimeError(f"stand-alone training of {arch} failed: {result.error}")
            self.memo[arch] = result

    def __call__(self, arch: str) -> dict[str, float]:
        self.prefetch([arch])
        return self.memo[arch]


def uniform_sample(space: Any, setup: Setup, seed: int) -> list[str]:
    """Return the common uniform sample: archs of the table's own uniform prefix, drawn per seed."""
    pool = [space.to_str(a) for a in space.sample_unique(setup.uniform_pool, np.random.default_rng(0))]
    pick = np.random.default_rng([seed, 2]).choice(len(pool), min(setup.uniform, len(pool)), replace=False)
    return [pool[i] for i in sorted(pick)]


def fit(setup: Setup, seed: int, name: str, sampler: Any, evaluator: Any) -> tuple[Any, list[dict[str, float]], float]:
    """Train (or load the finished checkpoint of) the supernet of one space; return it, its history and its seconds."""
    import torch

    from pipeline.config.stages import SupernetCfg
    from pipeline.supernet.models import build_supernet
    from pipeline.supernet.train import train_supernet

    space, splits = evaluator.space, evaluator.dataset.splits
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the same initial weights in every space of a seed
        model = build_supernet(space, splits.input_shape, splits.num_classes)
    cfg = SupernetCfg(epochs=setup.epochs, batch_size=setup.batch_size, lr=setup.lr, momentum=0.9, weight_decay=1e-4)
    started = time.perf_counter()
    history = train_supernet(model, space, sampler, splits.train, cfg, setup.out / "runs" / f"seed{seed}" / f"supernet-{name}",
                             seed=seed)
    return model, history, time.perf_counter() - started


def scorer(model: Any, evaluator: Any, setup: Setup) -> Callable[[str], float]:
    """Return arch -> its validation accuracy with the supernet's weights (BN recalibrated), memoised."""
    from pipeline.supernet.train import subnet_accuracy

    space, splits = evaluator.space, evaluator.dataset.splits
    device = next(model.parameters()).device
    memo: dict[str, float] = {}

    def score(arch: str) -> float:
        if arch not in memo:
            memo[arch] = subnet_accuracy(model, space, space.from_str(arch), splits.train, splits.val, 4,
                                         setup.batch_size, device)
        return memo[arch]

    score.memo = memo  # type: ignore[attr-defined]
    return score


def inside_sample(members: list[str] | None, uniform: list[str], setup: Setup, seed: int) -> list[str]:
    """Return the members a space's supernet is judged on: up to ``inside`` of them (the uniform sample for the full space)."""
    if members is None:
        return uniform
    rng = np.random.default_rng([seed, 3])
    return [members[i] for i in sorted(rng.choice(len(members), min(setup.inside, len(members)), replace=False))]


def supernet_row(setup: Setup, seed: int, name: str, members: list[str] | None, uniform: list[str],
                 evaluator: Any, truth: Truth) -> dict[str, Any]:
    """Train the supernet on one space, rank its members and the common sample, search it; return the row."""
    from pipeline.config.stages import SubnetSearchCfg
    from pipeline.supernet.search import evolve, rank_correlations

    space = evaluator.space
    region = listed(space, members) if members is not None else None
    sampler = region if region is not None else space
    model, history, train_s = fit(setup, seed, name, sampler, evaluator)
    score = scorer(model, evaluator, setup)
    inside = inside_sample(members, uniform, setup, seed)
    row: dict[str, Any] = {"seed": seed, "space": name, "size": float(space.size() if members is None else len(members)),
                           "supernet_epochs": setup.epochs, "supernet_train_s": train_s,
                           "supernet_train_acc": history[-1]["train_acc"],
                           "images_per_s": float(np.mean([h["images_per_s"] for h in history]))}
    truth.prefetch(inside + uniform)
    for label, archs in (("inside", inside), ("uniform", uniform)):
        corr = rank_correlations([score(a) for a in archs], [truth(a)["test_acc"] for a in archs])
        row.update({f"{label}_{k}": v for k, v in corr.items()})
        row[f"{label}_truth_sd"] = float(np.std([truth(a)["test_acc"] for a in archs]))
    inside_fn = (lambda a: a in region) if region is not None else (lambda a: True)
    evolution = SubnetSearchCfg(population=16, generations=4, parents=4, mutation_prob=0.3)
    best, fitness, _ = evolve(space, sampler.sample, inside_fn, sampler.size(), lambda a: score(space.to_str(a)),
                              evolution, np.random.default_rng([seed, 4]))
    pick = space.to_str(best)
    row.update({"pick": pick, "pick_supernet_acc": fitness, "pick_test_acc": truth(pick)["test_acc"],
                "pick_val_acc": truth(pick)["val_acc"], "subnets_scored": float(len(score.memo))})  # type: ignore[attr-defined]
    if members is not None:  # what the space itself offers: its members' truth, the oracle pick by validation
        known = [truth(a) for a in inside]
        row.update({"members_mean_test": float(np.mean([t["test_acc"] for t in known])),
                    "members_best_val_pick_test": max(known, key=lambda t: t["val_acc"])["test_acc"]})
    return row


def cross_rows(setup: Setup, seed: int, spaces: dict[str, list[str] | None], uniform: list[str], evaluator: Any,
               truth: Truth) -> list[dict[str, Any]]:
    """Judge every seed's supernet on every shrunk space's member sample: does the space's own supernet rank it better?"""
    from pipeline.supernet.search import rank_correlations

    judged = {name: inside_sample(members, uniform, setup, seed) for name, members in spaces.items() if members is not None}
    truth.prefetch([a for archs in judged.values() for a in archs])
    rows = []
    for trained_on, members in spaces.items():
        sampler = listed(evaluator.space, members) if members is not None else evaluator.space
        score = scorer(fit(setup, seed, trained_on, sampler, evaluator)[0], evaluator, setup)
        for name, archs in judged.items():
            corr = rank_correlations([score(a) for a in archs], [truth(a)["test_acc"] for a in archs])
            rows.append({"seed": seed, "supernet": trained_on, "judged": name, **corr})
    return rows


def done_rows(path: Path) -> list[dict[str, Any]]:
    """Return the rows already in ``results.jsonl`` (a torn last line from a kill is ignored)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append(path: Path, row: dict[str, Any]) -> None:
    """Append one row and flush it to disk."""
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def one_seed(setup: Setup, seed: int, done: set[tuple[int, str]], crossed: bool) -> list[dict[str, Any]]:
    """Make the spaces of one seed, train and judge a supernet in each not yet done, then cross-judge; return new rows."""
    from pipeline.build import build

    _, evaluator, _ = build(compose_cfg(base_overrides(setup, seed)))
    truth = Truth(evaluator, setup.workers)
    emitted = shrink(setup, seed, "lissnas", [f"shrink.pockets.target_size={setup.size}"])
    size = len(emitted)
    spaces: dict[str, list[str] | None] = {
        "lissnas": emitted,
        "rea_topk": rea_topk(setup, seed, evaluator, size),
        **{m: shrink(setup, seed, m, [f"shrink.refine.target_size={size}"]) for m in ("op_pruning", "regnet")},
        "full": None,
    }
    uniform = uniform_sample(evaluator.space, setup, seed)
    rows = []
    for name, members in spaces.items():
        if (seed, name) in done:
            continue
        row = supernet_row(setup, seed, name, members, uniform, evaluator, truth)
        append(setup.out / "results.jsonl", row)
        print(f"seed {seed} {name:>10}: size {row['size']:.0f}, inside tau {row['inside_kendall_tau']:+.3f}, "
              f"uniform tau {row['uniform_kendall_tau']:+.3f}, pick test {row['pick_test_acc']:.2f}", flush=True)
        rows.append(row)
    if not crossed:
        cross = cross_rows(setup, seed, spaces, uniform, evaluator, truth)
        for row in cross:
            append(setup.out / "cross.jsonl", row)
        own = {r["judged"]: r["kendall_tau"] for r in cross if r["supernet"] == r["judged"]}
        full = {r["judged"]: r["kendall_tau"] for r in cross if r["supernet"] == "full"}
        print(f"seed {seed} on each space's members, own vs full supernet tau: "
              + ", ".join(f"{k} {own[k]:+.3f} vs {full[k]:+.3f}" for k in own), flush=True)
    return rows


def paired(rows: list[dict[str, Any]], metric: str, a: str, b: str, tol: float) -> str:
    """Return 'better/tied/worse' of space ``a`` vs ``b`` on ``metric`` over seeds holding both, and the mean gap."""
    by = {(r["seed"], r["space"]): r.get(metric) for r in rows}
    diffs = [by[(s, a)] - by[(s, b)] for s in sorted({r["seed"] for r in rows})
             if by.get((s, a)) is not None and by.get((s, b)) is not None
             and math.isfinite(by[(s, a)]) and math.isfinite(by[(s, b)])]
    return counts(diffs, tol)


def counts(diffs: list[float], tol: float) -> str:
    """Return 'better/tied/worse (mean difference)' of paired differences, ties within ``tol``."""
    if not diffs:
        return "-"
    d = np.array(diffs)
    return f"{int((d > tol).sum())}/{int((abs(d) <= tol).sum())}/{int((d < -tol).sum())} ({d.mean():+.3f})"


def cross_summary(cross: list[dict[str, Any]]) -> list[str]:
    """Return the markdown of the cross-judging: every supernet's tau on every shrunk space's members."""
    if not cross:
        return []
    tau = {(r["seed"], r["supernet"], r["judged"]): r["kendall_tau"] for r in cross}
    seeds = sorted({r["seed"] for r in cross})
    judged = [s for s in SPACES if any(r["judged"] == s for r in cross)]
    lines = ["", f"Each supernet ranks each shrunk space's member sample (Kendall tau vs stand-alone test accuracy; "
             f"mean +- std over seeds {seeds}); rows: the members judged, columns: where the supernet was trained.",
             "", "| members of | " + " | ".join(SPACES) + " | own vs full (b/t/w) |", "|---|" + "---|" * (len(SPACES) + 1)]
    for name in judged:
        cells = []
        for trained in SPACES:
            got = [tau[(s, trained, name)] for s in seeds if (s, trained, name) in tau]
            cells.append(f"{np.nanmean(got):.3f} +- {np.nanstd(got):.3f}" if got else "-")
        diffs = [tau[(s, name, name)] - tau[(s, "full", name)] for s in seeds
                 if (s, name, name) in tau and (s, "full", name) in tau]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {counts(diffs, 0.02)} |")
    return lines


def summary(rows: list[dict[str, Any]], cross: list[dict[str, Any]], best_test: float) -> str:
    """Return the markdown summary: per-space mean +- std, then LISSNAS paired against each other space."""
    metrics = [("inside_kendall_tau", 0.02), ("uniform_kendall_tau", 0.02), ("pick_test_acc", 0.05)]
    lines = [f"Seeds: {sorted({r['seed'] for r in rows})}; regret = {best_test:.2f} (best test accuracy in the "
             "table) - pick_test_acc.", "",
             "| space | size | inside tau | inside truth sd | uniform tau | pick test | pick regret |",
             "|---|---|---|---|---|---|---|"]
    for name in SPACES:
        got = [r for r in rows if r["space"] == name]
        if not got:
            continue
        cell = lambda k, got=got: f"{np.nanmean([r[k] for r in got]):.3f} +- {np.nanstd([r[k] for r in got]):.3f}"  # noqa: E731
        regret = [best_test - r["pick_test_acc"] for r in got]
        lines.append(f"| {name} | {np.mean([r['size'] for r in got]):.0f} | {cell('inside_kendall_tau')} | "
                     f"{cell('inside_truth_sd')} | {cell('uniform_kendall_tau')} | {cell('pick_test_acc')} | "
                     f"{np.mean(regret):.2f} +- {np.std(regret):.2f} |")
    lines += ["", "LISSNAS vs each space, paired by seed: better/tied/worse (mean difference); ties within "
              + ", ".join(f"{m} {t}" for m, t in metrics) + ".", "",
              "| vs | " + " | ".join(m for m, _ in metrics) + " |", "|---|" + "---|" * len(metrics)]
    for other in SPACES[1:]:
        lines.append(f"| {other} | " + " | ".join(paired(rows, m, "lissnas", other, t) for m, t in metrics) + " |")
    lines += ["", "(The full space's inside sample is the uniform sample, whose truth spans far more than a shrunk "
              "space's: its inside tau is not like for like; the cross-judging below is.)", *cross_summary(cross)]
    return "\n".join(lines) + "\n"


def log_mlflow(setup: Setup, rows: list[dict[str, Any]]) -> None:
    """Log this invocation's new rows as runs of experiment ``supernet-payoff``, the summary and cross-judging as artifacts."""
    from pipeline.tracking import Tracker

    tracker = Tracker(f"sqlite:///{setup.out}/mlflow.db", "supernet-payoff")
    for row in rows:
        with tracker.run(f"{row['space']}-seed{row['seed']}", None, {"space": row["space"], "seed": str(row["seed"])}) as rid:
            tracker.params(rid, {"budget": setup.budget, "supernet_epochs": setup.epochs, "protocol": " ".join(setup.protocol),
                                 "pick": row["pick"]})
            tracker.metrics(rid, {k: float(v) for k, v in row.items() if isinstance(v, int | float) and math.isfinite(v)})
    with tracker.run("summary", None, {"space": "summary"}) as rid:
        for name in ("summary.md", "cross.jsonl"):
            if (setup.out / name).exists():
                tracker.artifact(rid, setup.out / name)


def main() -> None:
    """Run every seed (resuming), then write and log the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/supernet/results/payoff")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks/nb201_fashion_mnist.csv")
    parser.add_argument("--protocol", nargs="*", default=CPU_PROTOCOL, help="pipeline overrides fixing the trainings")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--size", type=int, default=50, help="archs LISSNAS emits (REA's top-K takes as many)")
    parser.add_argument("--epochs", type=int, default=20, help="supernet epochs (every space)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--inside", type=int, default=50, help="members ranked per space")
    parser.add_argument("--uniform", type=int, default=100, help="archs of the common uniform sample")
    parser.add_argument("--uniform-pool", type=int, default=1500, help="the table's uniform prefix it is drawn from")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import torch

    from spaces.files import atomic_write_text

    torch.set_num_threads(1)
    setup = Setup(args.protocol, args.table.resolve(), args.budget, args.size, args.epochs, args.batch_size, args.lr, args.inside,
                  args.uniform, args.uniform_pool, args.workers, args.out.resolve())
    setup.out.mkdir(parents=True, exist_ok=True)
    results, cross = setup.out / "results.jsonl", setup.out / "cross.jsonl"
    new: list[dict[str, Any]] = []
    for seed in parse_seeds(args.seeds):
        done = {(r["seed"], r["space"]) for r in done_rows(results)}
        crossed = seed in {r["seed"] for r in done_rows(cross)}
        if all((seed, s) in done for s in SPACES) and crossed:
            continue
        new += one_seed(setup, seed, done, crossed)
    best_test = max(float(r["test_acc"]) for r in _table_rows(setup.table))
    text = summary(done_rows(results), done_rows(cross), best_test)
    atomic_write_text(setup.out / "summary.md", text)
    log_mlflow(setup, new)
    print(text)


def _table_rows(path: Path) -> list[dict[str, str]]:
    """Return the table's rows."""
    import csv

    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


if __name__ == "__main__":
    main()
