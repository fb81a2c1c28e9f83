"""Locality-based search-space shrinkage: stages, runner and entry points."""

from pathlib import Path


def conf_dir() -> str:
    """Return the Hydra config folder: shipped inside the package (a wheel), else the checkout's ``conf/``."""
    packaged = Path(__file__).resolve().parent / "conf"
    if (packaged / "config.yaml").is_file():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "conf")


CONF_DIR = conf_dir()
