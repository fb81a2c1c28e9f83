"""`python -m pipeline --help`: Hydra's help template filled from one composition (Hydra's own recomposes
the config once per group: seconds of CPU before the first word)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline import CONF_DIR
from pipeline.cli import check, split_argv


def render_help(argv: list[str], config_name: str = "config") -> str:
    """Return ``--help`` for ``argv``'s composition: Hydra's template, filled without Hydra's per-group recomposition."""
    import string

    from omegaconf import open_dict

    line = split_argv(argv)
    cfg = check([a for a in argv if a not in HELP_FLAGS], config_name)
    template = str(cfg.hydra.help.template)
    with open_dict(cfg):
        del cfg["hydra"]
    groups = config_groups([Path(CONF_DIR), *([Path(line.config_dir)] if line.config_dir else [])])
    listed = "\n".join(f"{group}: {', '.join(sorted(options))}" for group, options in sorted(groups.items()))
    listed += "\n"  # as Hydra lays it out
    return string.Template(template).safe_substitute(APP_CONFIG_GROUPS=listed, HYDRA_CONFIG_GROUPS="", FLAGS_HELP="",
                                                     CONFIG=OmegaConf.to_yaml(cfg))


HELP_FLAGS = ("--help", "-h")


def config_groups(dirs: list[Path]) -> dict[str, set[str]]:
    """Return every config group and its options: YAML folders under ``dirs`` and the typed schemas' groups."""
    from hydra.core.config_store import ConfigStore

    groups: dict[str, set[str]] = {}
    for base in dirs:
        for file in base.rglob("*.yaml"):
            if file.parent != base:
                groups.setdefault(file.parent.relative_to(base).as_posix(), set()).add(file.stem)

    def walk(node: dict[str, Any], prefix: str) -> None:
        for name, child in node.items():
            if isinstance(child, dict):
                walk(child, f"{prefix}{name}/")
            elif prefix and name.endswith(".yaml"):
                groups.setdefault(prefix.rstrip("/"), set()).add(name.removesuffix(".yaml"))

    walk(ConfigStore.instance().repo, "")
    # stage/*: empty nodes a method file of before may list (pipeline/schema.py); nothing to choose there
    return {g: o for g, o in groups.items() if not g.startswith("hydra") and g != "stage"}

