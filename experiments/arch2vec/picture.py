"""Draw a run's shrunk space on the learned latent space: PCA of every arch, coloured by accuracy.

    python experiments/arch2vec/picture.py RUN_DIR --out experiments/arch2vec/results/pockets_nb201.png

RUN_DIR is a pipeline run folder of a benchmark-driven run on an enumerable space (NB201,
NB-Macro). The encoder is the run's cached one (same space and ``shrink.latent.*`` settings, in
``--cache-dir``), trained once if absent. Grey-to-yellow dots: every arch by validation
accuracy; black crosses: the archs the run evaluated; circles: the emitted members, one colour
per pocket.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Embed the space, project it, and mark the run's evaluations and pockets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from omegaconf import OmegaConf

    from pipeline import latent
    from pipeline.artifacts import read_json, read_rows
    from pipeline.evaluators.benchmark import read_table
    from spaces import from_config
    from spaces.shrunk import ShrunkSpace

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=Path("~/.cache/nas-shrink/embeddings").expanduser())
    args = parser.parse_args()
    config = read_json(args.run_dir / "run.json")["config"]
    space = from_config(config["space"])
    shrink = config["shrink"].get("latent", config["shrink"])  # runs made before the per-stage nodes: flat
    cfg = latent.Cfg(locality="latent", latent_steps=shrink.get("latent_steps", 3500),
                     latent_train=shrink.get("latent_train", 20000))
    found, _ = latent.build(space, cfg, args.cache_dir)
    archs = latent.enumerable(space, cfg.latent_train)
    if found is None or archs is None:
        sys.exit(f"error: {space.name} is not enumerable within shrink.latent.latent_train; nothing to draw")
    table = read_table(Path(OmegaConf.create(config).evaluator.path), space, config["dataset"]["name"])
    acc = np.array([table[a]["val_acc"] for a in archs])
    z = found.vectors(archs)
    centred = z - z.mean(0)
    axes = np.linalg.svd(centred, full_matrices=False)[2][:2]
    where = dict(zip(archs, centred @ axes.T, strict=True))
    fig, ax = plt.subplots(figsize=(6, 5))
    order = np.argsort(acc)
    xy = np.stack([where[archs[i]] for i in order])
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=acc[order], s=2, cmap="cividis", vmin=np.percentile(acc, 5))
    fig.colorbar(sc, label="validation accuracy (%)")
    evaluated = [r["arch"] for p in sorted(args.run_dir.glob("round_*/evaluate/scores.csv")) for r in read_rows(p)]
    ev = np.stack([where[a] for a in evaluated])
    ax.scatter(ev[:, 0], ev[:, 1], marker="x", s=10, c="black", linewidths=0.6, label=f"evaluated ({len(ev)})")
    shrunk = ShrunkSpace.load(args.run_dir / "emit" / "shrunk_space.json")
    for k, pocket in enumerate(shrunk.pockets):
        pts = np.stack([where[a] for a, _ in pocket.members])
        ax.scatter(pts[:, 0], pts[:, 1], s=28, facecolors="none", edgecolors=f"C{k % 10}", linewidths=1.0,
                   label=f"pocket {pocket.id} ({len(pocket.members)})" if k < 6 else None)
    ax.set(title=f"{space.name} {config['dataset']['name']}: emitted pockets in the latent space (PCA)",
           xlabel="PC 1", ylabel="PC 2")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
