"""What the experiment scripts share: the seed list syntax and composing the pipeline's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def parse_seeds(text: str) -> list[int]:
    """Parse '0-9' or '0,3,5' into a list of seeds."""
    if "-" in text:
        lo, hi = (int(x) for x in text.split("-"))
        return list(range(lo, hi + 1))
    return [int(x) for x in text.split(",")]


def compose_cfg(overrides: list[str]) -> Any:
    """Compose the pipeline config as `python -m pipeline` would."""
    from hydra import compose, initialize_config_dir

    from pipeline.schema import register

    register()  # the typed config groups (pipeline/schema.py)
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)
