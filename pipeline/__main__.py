"""`python -m pipeline`: the only @hydra.main. Prints the run id, the shrunk-space path and how to open the run."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from pipeline.errors import DOMAIN_ERRORS

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def normalise_argv(argv: list[str]) -> list[str]:
    """Accept ``+space=NAME`` as well as ``space=NAME``.

    ``space`` has a default in the defaults list, where Hydra answers ``+space=`` with "Multiple
    values for space"; users coming from "append a group" docs type it anyway, so both spell the
    same override.
    """
    return [a[1:] if a.startswith("+space=") else a for a in argv]


def check_overrides(overrides: list[str]) -> None:
    """Reject an override without a key (``=0``), which Hydra answers with a traceback."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from pipeline.errors import ConfigError

    parser = OverridesParser.create()
    for text in overrides:
        if text.startswith("-"):
            continue
        try:
            parsed = parser.parse_override(text)
        except HydraException:
            continue  # Hydra reports a malformed override itself, in one line
        if not parsed.key_or_group:
            raise ConfigError(f"override {text!r} has no key; write KEY=VALUE, e.g. seed=3")


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
        result = run(cfg, run_dir, hydra_out / ".hydra", sweep_parent=sweep)
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    uri = cfg.tracking.uri
    print(f"MLflow run id: {result.run_id}  (open with: mlflow ui --backend-store-uri {uri})")
    print(f"Shrunk space: {result.shrunk_space}")


def cli() -> None:
    """Console-script entry point (``nas-shrink``)."""
    sys.argv = normalise_argv(sys.argv)
    try:
        check_overrides(sys.argv[1:])
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    main()


if __name__ == "__main__":
    cli()
