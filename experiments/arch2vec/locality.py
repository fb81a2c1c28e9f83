"""How local is each distance? Hand-made (decision Hamming) vs learned (arch2vec latent) locality.

    python experiments/arch2vec/locality.py            # NB201 x 3 datasets + NB-Macro, seeds 0-9

Per space: train the arch2vec-style encoder (``pipeline/embedding.py``) on 90% of the space
without labels, measure reconstruction on the held-out 10%, embed every arch. Per dataset and
sampling seed: (a) Spearman between distance and |val_acc difference| over 20,000 random pairs
(higher = more local); (b) a k-nearest-neighbour predictor: 1,000 random archs with known
val_acc predict 2,000 others by the mean of their 10 nearest (Hamming ties broken at random);
Spearman between prediction and truth. Results go to ``results/locality.json``, a README table
(printed) and MLflow (experiment ``arch2vec-locality``); ``results/latent_<space>.png`` shows a
2-D PCA of the latent space coloured by accuracy. Needs ../shared/data.
``--sampled`` measures reconstruction on NB101 and MobileNet instead (too large to enumerate:
trained on 20,000 uniform samples, 2,000 other archs held out; ``results/reconstruction_sampled.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.embedding import EmbeddingCfg, embed, reconstruction, train_encoder, training_archs  # noqa: E402
from spaces.files import write_json_atomic  # noqa: E402
from spaces.nb201 import NB201Space  # noqa: E402
from spaces.nb_macro import NBMacroSpace  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HERE = Path(__file__).parent


def nb201_tables() -> dict[str, dict[str, float]]:
    """Return dataset -> arch -> val_acc from the shared NB201 exports."""
    from pipeline.convert_nb201 import convert
    from pipeline.evaluators.benchmark import read_table

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nb201.csv"
        convert([SHARED / f"nasbench201_{d}.csv" for d in ("cifar10", "cifar100", "ImageNet16-120")], out)
        return {d: {a: r["val_acc"] for a, r in read_table(out, NB201Space(), d).items()}
                for d in ("cifar10", "cifar100", "ImageNet16-120")}


def nb_macro_table() -> dict[str, float]:
    """Return arch -> val_acc (mean of training runs 1-2) of NAS-Bench-Macro."""
    from pipeline.convert_nb_macro import rows_from_release

    data = json.loads((SHARED / "nas-bench-macro_cifar10.json").read_text())
    return {r["arch"]: r["val_acc"] for r in rows_from_release(data, "nas-bench-macro")}


def locality(codes: np.ndarray, latent: np.ndarray, acc: np.ndarray, seed: int) -> dict[str, float]:
    """Return pair Spearman and kNN-predictor Spearman for Hamming and latent distance."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(len(acc), size=(2, 20000))
    keep = i != j
    i, j = i[keep], j[keep]
    diff = np.abs(acc[i] - acc[j])
    out = {"pair_spearman_decisions": stats.spearmanr((codes[i] != codes[j]).sum(1), diff).statistic,
           "pair_spearman_latent": stats.spearmanr(np.linalg.norm(latent[i] - latent[j], axis=1), diff).statistic}
    order = rng.permutation(len(acc))
    known, query = order[:1000], order[1000:3000]
    for name, dist in (("decisions", (codes[query, None, :] != codes[None, known, :]).sum(2).astype(float)),
                       ("latent", np.linalg.norm(latent[query, None, :] - latent[None, known, :], axis=2))):
        jitter = rng.random(dist.shape) * 1e-6  # random tie-break among equally distant archs
        nearest = np.argsort(dist + jitter, axis=1)[:, :10]
        out[f"knn_spearman_{name}"] = stats.spearmanr(acc[known][nearest].mean(1), acc[query]).statistic
    return {k: float(v) for k, v in out.items()}


def picture(space_name: str, latent: np.ndarray, acc: np.ndarray, path: Path) -> None:
    """Save a 2-D PCA of the latent space coloured by accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centred = latent - latent.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:2]
    xy = centred @ axes.T
    fig, ax = plt.subplots(figsize=(5, 4.2))
    order = np.argsort(acc)
    sc = ax.scatter(xy[order, 0], xy[order, 1], c=acc[order], s=2, cmap="viridis", vmin=np.percentile(acc, 5))
    fig.colorbar(sc, label="validation accuracy (%)")
    ax.set(title=f"{space_name}: arch2vec latent (PCA)", xlabel="PC 1", ylabel="PC 2")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def one_space(name: str, space, tables: dict[str, dict[str, float]], cfg: EmbeddingCfg,
              seeds: range) -> list[dict]:
    """Train, measure reconstruction, and measure locality on every dataset of one space."""
    archs = training_archs(space, cfg)
    perm = np.random.default_rng(cfg.seed).permutation(len(archs))
    held = [archs[k] for k in perm[: len(archs) // 10]]
    start = time.time()
    model = train_encoder(space, [archs[k] for k in perm[len(archs) // 10 :]], cfg, progress=True)
    seconds = time.time() - start
    recon = reconstruction(model, space, held)
    print(f"{name}: trained in {seconds:.0f} s; held-out reconstruction {recon}", flush=True)
    latent = embed(model, space, archs)
    codes = space.codes(archs)
    strings = [space.to_str(a) for a in archs]
    rows = []
    for dataset, table in tables.items():
        acc = np.array([table[a] for a in strings])
        if dataset == next(iter(tables)):
            picture(name, latent, acc, HERE / "results" / f"latent_{name}.png")
        for seed in seeds:
            rows.append({"space": name, "dataset": dataset, "seed": seed, "train_seconds": seconds, **recon,
                         **locality(codes, latent, acc, seed)})
    return rows


def sampled_reconstruction(name: str, space, cfg: EmbeddingCfg) -> dict:
    """Train on a uniform sample of a space too large to enumerate; return held-out reconstruction."""
    archs = training_archs(space, cfg)
    held = space.sample_unique(2000, np.random.default_rng(cfg.seed + 1), exclude=[space.to_str(a) for a in archs])
    start = time.time()
    model = train_encoder(space, archs, cfg, progress=True)
    row = {"space": name, "train_archs": len(archs), "held_out": len(held), "train_seconds": time.time() - start,
           **reconstruction(model, space, held)}
    print(row, flush=True)
    return row


def table(rows: list[dict]) -> str:
    """Return the README table: mean +- std over seeds and latent-vs-decisions better/worse counts."""
    lines = ["| space | dataset | pair Spearman: decisions | latent | kNN Spearman: decisions | latent | "
             "latent better/worse (kNN) |", "|---|---|---|---|---|---|---|"]
    for key in dict.fromkeys((r["space"], r["dataset"]) for r in rows):
        group = [r for r in rows if (r["space"], r["dataset"]) == key]

        def ms(k: str, g: list[dict] = group) -> str:
            v = np.array([r[k] for r in g])
            return f"{v.mean():.3f} +- {v.std():.3f}"

        better = sum(r["knn_spearman_latent"] > r["knn_spearman_decisions"] for r in group)
        lines.append(f"| {key[0]} | {key[1]} | {ms('pair_spearman_decisions')} | {ms('pair_spearman_latent')} | "
                     f"{ms('knn_spearman_decisions')} | {ms('knn_spearman_latent')} | {better}/{len(group) - better} |")
    return "\n".join(lines)


def log_mlflow(rows: list[dict], uri: str) -> None:
    """Log one MLflow run per (space, dataset) with the seeds' mean metrics."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("arch2vec-locality")
    for key in dict.fromkeys((r["space"], r["dataset"]) for r in rows):
        group = [r for r in rows if (r["space"], r["dataset"]) == key]
        with mlflow.start_run(run_name=f"{key[0]}-{key[1]}"):
            mlflow.log_params({"space": key[0], "dataset": key[1], "seeds": len(group)})
            numeric = [k for k, v in group[0].items() if isinstance(v, float)]
            mlflow.log_metrics({k: float(np.mean([r[k] for r in group])) for k in numeric})


def main() -> None:
    """Run every space and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=EmbeddingCfg.steps)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tracking-uri", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    parser.add_argument("--sampled", action="store_true", help="only measure reconstruction on NB101 and MobileNet "
                        "(encoders trained on 20,000 uniform samples, 2,000 other archs held out)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    (HERE / "results").mkdir(exist_ok=True)
    cfg = EmbeddingCfg(steps=args.steps)
    if args.sampled:
        from spaces.mobilenet import MobileNetSpace
        from spaces.nb101 import NB101Space

        rows = [sampled_reconstruction(n, s, cfg) for n, s in (("nb101", NB101Space()), ("mobilenet", MobileNetSpace()))]
        write_json_atomic(HERE / "results" / "reconstruction_sampled.json", rows)
        return
    rows = one_space("nb201", NB201Space(), nb201_tables(), cfg, range(args.seeds))
    rows += one_space("nb_macro", NBMacroSpace(), {"cifar10": nb_macro_table()}, cfg, range(args.seeds))
    write_json_atomic(HERE / "results" / "locality.json", rows)
    print(table(rows))
    log_mlflow(rows, args.tracking_uri)


if __name__ == "__main__":
    main()
