"""Train a run's supernet on several GPUs: ``torchrun --nproc_per_node=8 -m pipeline.supernet RUN_DIR``.

RUN_DIR is a pipeline run whose shrunk space has been emitted (``python -m pipeline
supernet=none ...``, or any finished run). Every rank trains its shard with DistributedDataParallel;
rank 0 alone writes the checkpoint, the curves and the stage's done-marker. Then
``python -m pipeline resume=RUN_DIR`` reuses the trained supernet, runs the search stage and logs
everything to MLflow. Extra ``supernet.KEY=VALUE`` arguments override conf/supernet/spos.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from pipeline import CONF_DIR
from pipeline.artifacts import read_json, write_json
from pipeline.errors import DOMAIN_ERRORS, ConfigError

CONF = Path(CONF_DIR)


def main(argv: list[str]) -> int:
    """Train the supernet stage of ``argv[0]`` (a run directory) under the current launch."""
    from hydra.utils import instantiate

    from pipeline.context import StageContext
    from pipeline.run import stage_rng, supernet_configs
    from pipeline.stages import supernet
    from pipeline.supernet.train import world

    if not argv or not (Path(argv[0]) / "run.json").exists():
        raise ConfigError(f"{argv[0] if argv else '(none)'} is not a pipeline run directory (no run.json); "
                          "usage: torchrun --nproc_per_node=N -m pipeline.supernet RUN_DIR [supernet.KEY=VALUE ...]")
    run_dir = Path(argv[0])
    if not (run_dir / "emit" / "shrunk_space.json").exists():
        raise ConfigError(f"{run_dir} has no emitted shrunk space yet; finish the run first (python -m pipeline ...)")
    cfg = OmegaConf.create(read_json(run_dir / "run.json")["config"])
    cfg.supernet = OmegaConf.merge(OmegaConf.load(CONF / "supernet" / "spos.yaml"),
                                   OmegaConf.from_dotlist([a.removeprefix("supernet.") for a in argv[1:]]))
    cfg.supernet.enabled = True
    space, dataset = instantiate(cfg.space), instantiate(cfg.dataset)
    stage_cfg = supernet_configs(cfg, space, evaluator=None)["supernet"]
    last = max(int(p.name.split("_")[1]) for p in run_dir.glob("round_*"))
    folder = run_dir / "supernet"
    ctx = StageContext(space, None, stage_rng(int(cfg.seed), last, "supernet"), run_dir, last, "supernet",
                       folder, 0, dataset=dataset)
    metrics = supernet.run(ctx, stage_cfg)
    if world()[0] == 0:
        write_json(folder / "_done.json", {"metrics": metrics})
        print(f"supernet trained: {folder}; finish with: python -m pipeline resume={run_dir}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
