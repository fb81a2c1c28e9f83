"""Train a run's supernet on several GPUs: ``torchrun --nproc_per_node=8 -m pipeline.supernet RUN_DIR``.

RUN_DIR is a pipeline run whose shrunk space has been emitted (``python -m pipeline
supernet=none ...``, or any finished run). Its config is composed the way ``resume=RUN_DIR``
composes it (the run's recorded overrides, then ``supernet=spos`` and the ``supernet.train.KEY=VALUE``
arguments given here), and the supernet stage runs through the pipeline's own runner: every rank
trains its shard with DistributedDataParallel; rank 0 holds the run folder's lock and writes the
stage's files and done-marker. Then ``python -m pipeline resume=RUN_DIR`` reuses the trained
supernet, runs the search stage and logs everything to MLflow.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from pipeline import interrupts
from pipeline.errors import DOMAIN_ERRORS, ConfigError

USAGE = "usage: torchrun --nproc_per_node=N -m pipeline.supernet RUN_DIR [supernet.train.KEY=VALUE ...]"


def run_folder(argv: list[str]) -> Path:
    """Return the run folder named by ``argv[0]``, refusing one without an emitted shrunk space."""
    if not argv or not (Path(argv[0]) / "run.json").exists():
        raise ConfigError(f"{argv[0] if argv else '(none)'} is not a pipeline run directory (no run.json); {USAGE}")
    run_dir = Path(argv[0])
    if not (run_dir / "emit" / "shrunk_space.json").exists():
        raise ConfigError(f"{run_dir} has no emitted shrunk space yet; finish the run first (python -m pipeline ...)")
    bad = [a for a in argv[1:] if not a.startswith("supernet.")]
    if bad:
        raise ConfigError(f"{bad[0]!r}: only supernet.train.* / supernet.search.* settings can change here; {USAGE}")
    return run_dir


def main(argv: list[str]) -> int:
    """Train the supernet stage of ``argv[0]`` (a run directory) under the current launch."""
    from omegaconf import OmegaConf

    from pipeline.artifacts import read_json, write_json
    from pipeline.cli import LAUNCH_FILE, check, with_recorded_overrides
    from pipeline.locks import exclusive
    from pipeline.loop import Runner
    from pipeline.rundir import LOCK_FILE, prepare_run_dir
    from pipeline.supernet.train import world

    interrupts.install()
    run_dir = run_folder(argv)
    cfg = check(with_recorded_overrides(["supernet=spos", "supernet.enabled=true", *argv[1:]], run_dir))
    # The results-deciding settings come from the run itself (a folder made by pipeline.run.run has no Hydra overrides).
    OmegaConf.set_struct(cfg, False)
    for key, value in read_json(run_dir / "run.json")["config"].items():
        cfg[key] = value
    rank = world()[0]
    lock = exclusive(run_dir / LOCK_FILE, f"run folder {run_dir}") if rank == 0 else contextlib.nullcontext()
    with lock:
        prepare_run_dir(run_dir, cfg)  # the run's results-deciding settings must be the ones it was made with
        runner = Runner(cfg, run_dir, tracker=None, progress=False)
        last = max(int(p.name.split("_")[1]) for p in run_dir.glob("round_*"))
        ctx, stage_cfg, marker, settings = runner.prepare("supernet", last, runner.supernet_cfgs["supernet"],
                                                          set_aside=rank == 0)
        runner._run_stage(ctx, stage_cfg, marker, settings, write=rank == 0)
    if rank == 0:
        # What the resume must run with: a run made with supernet=none would otherwise never search this supernet.
        write_json(run_dir / LAUNCH_FILE, {"overrides": ["supernet=spos", "supernet.enabled=true", *argv[1:]]})
        print(f"supernet trained: {ctx.folder}; finish with: python -m pipeline resume={run_dir}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
