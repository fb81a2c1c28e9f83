"""`python -m pipeline` / `nas-shrink`: the only @hydra.main. Prints the run id, the shrunk-space path and how to open the run."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from pipeline import CONF_DIR
from pipeline.cli import check, normalise_argv, with_recorded_overrides
from pipeline.errors import DOMAIN_ERRORS, domain_cause

RUN_DIR: list[Path] = []  # the folder of the run in progress, for the Ctrl-C message


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    """Run the shrinkage pipeline and report where its results are."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeline.run import resolve_resume, run
    from pipeline.sweep import sweep_run_id

    hydra_cfg = HydraConfig.get()
    hydra_out = Path(hydra_cfg.runtime.output_dir)
    sweep = sweep_run_id(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else None
    try:
        run_dir = resolve_resume(str(cfg.resume), cfg.tracking.uri, cfg.tracking.experiment) if cfg.resume else hydra_out
        RUN_DIR[:] = [run_dir]
        result = run(cfg, run_dir, hydra_out / ".hydra", sweep_parent=sweep)
    except Exception as err:
        cause = domain_cause(err)
        if cause is None:
            raise
        sys.exit(f"error: {cause}")
    uri = cfg.tracking.uri
    print(f"MLflow run id: {result.run_id}  (open with: mlflow ui --backend-store-uri {uri})")
    print(f"Shrunk space: {result.shrunk_space}")


def interrupted_message(run_dir: Path | None, program: str) -> str:
    """Say, in at most two lines, that nothing is lost and how to continue."""
    if run_dir is None:
        return "interrupted before a run folder was made; nothing to resume"
    try:
        shown = run_dir.resolve().relative_to(Path.cwd())
    except ValueError:  # a folder outside the working directory is shown in full
        shown = run_dir
    return (f"interrupted: every finished evaluation and stage is kept in {shown}\n"
            f"resume with: {program} resume={shown}")


def cli() -> None:
    """Console-script entry point (``nas-shrink``): check the command line, run, turn Ctrl-C into one message."""
    argv = normalise_argv(sys.argv[1:])
    try:
        cfg = check(argv)
        if cfg is not None and cfg.get("resume"):
            from pipeline.run import resolve_resume

            run_dir = resolve_resume(str(cfg.resume), cfg.tracking.uri, cfg.tracking.experiment)
            argv = with_recorded_overrides(argv, run_dir)
            check(argv)
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    sys.argv = [sys.argv[0], *argv]
    try:
        main()
    except KeyboardInterrupt:
        program = "python -m pipeline" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
        print("\n" + interrupted_message(RUN_DIR[0] if RUN_DIR else None, program), file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    cli()
