"""The run folder: its manifest (run.json), what a resume may change, stage markers, the MLflow parent on file."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.artifacts import read_json, write_json
from pipeline.config.groups import LoopCfg
from pipeline.errors import ConfigError
from pipeline.schema import STAGE_CLASSES
from pipeline.tracking import Tracker, flatten

LOCK_FILE = ".lock"  # held by the one process working in a run folder (pipeline/locks.py)


def resolve_resume(value: str, uri: str, experiment: str) -> Path:
    """Return the run directory named by ``resume=``: a folder, or an MLflow run id of a pipeline run."""
    path = Path(value)
    if (path / "run.json").exists():
        return path
    if path.exists():
        raise ConfigError(f"resume={value!r} is not a run directory (no run.json); pass the folder a run printed")
    try:
        run_dir = Tracker(uri, experiment).client.get_run(value).data.tags.get("run_dir")
    except Exception:  # MLflow raises several types for an unknown id
        run_dir = None
    if not run_dir or not (Path(run_dir) / "run.json").exists():
        raise ConfigError(f"resume={value!r} is neither a run directory nor the MLflow run id of a pipeline run "
                          f"in {uri} whose folder still exists")
    return Path(run_dir)


def manifest_config(cfg: DictConfig) -> dict[str, Any]:
    """Return the config parts that determine results (what a resumed run must match)."""
    keep = ("seed", "space", "dataset", "evaluator", "shrink", "constraints")
    return {k: OmegaConf.to_container(cfg[k], resolve=True) if k != "seed" else cfg[k] for k in keep if k in cfg}


def prepare_run_dir(run_dir: Path, cfg: DictConfig) -> None:
    """Create the run folder or, when it exists, check it was made by the same config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = run_dir / "run.json"
    current = _defaults_filled(flatten(manifest_config(cfg)))
    if manifest.exists():
        # A setting added later (absent from an older manifest) that is null now, or the default the stage
        # used before the key was listed in its YAML, changes nothing.
        recorded = {**{k: v for k, v in current.items() if v in ("None", _stage_default(k))},
                    **_defaults_filled(_migrated(flatten(read_json(manifest)["config"]), current))}
        diff = sorted(k for k in current.keys() | recorded.keys() if current.get(k) != recorded.get(k))
        if diff:
            shown = "; ".join(f"{k}={recorded.get(k, '(unset)')}, not {current.get(k, '(unset)')}" for k in diff[:3])
            more = f" (and {len(diff) - 3} more keys)" if len(diff) > 3 else ""
            raise ConfigError(
                f"resume: {run_dir} was made with {shown}{more}; drop those overrides to continue it "
                "(resume=DIR alone reuses its settings), or start a new run without resume="
            )
    else:
        write_json(manifest, {"config": manifest_config(cfg)})


def _stage_default(key: str) -> str | None:
    """Return, as manifest text, the default of ``shrink.<node>.<field>`` or of the loop's ``shrink.<field>`` (None if none)."""
    group, node, name = ([*key.split("."), "", ""])[:3]
    owner, name = (LoopCfg, node) if not name else (STAGE_CLASSES.get(node), name)
    if group != "shrink" or owner is None:
        return None
    found = next((f for f in fields(owner) if f.name == name), None)
    return str(found.default) if found is not None and found.default is not MISSING else None


def _defaults_filled(flat: dict[str, Any]) -> dict[str, Any]:
    """Return a flat manifest with each unset (None) stage key as the default its stage then used."""
    return {k: _stage_default(k) or v if v == "None" else v for k, v in flat.items()}


def _migrated(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Return a manifest of before the per-stage nodes (``shrink.radius``) with its keys in their stage nodes."""
    out = {}
    for key, value in recorded.items():
        group, _, leaf = key.partition(".")
        homes = [] if key in current or "." in leaf else [
            k for k in current if k.startswith(f"{group}.") and k.count(".") == 2 and k.endswith(f".{leaf}")]
        out.update(dict.fromkeys(homes or [key], value))
    return out


def stage_settings(cfg: Any) -> dict[str, str]:
    """Return the settings that decide a stage's output (not its progress bar, not the run's provenance)."""
    return {k: v for k, v in flatten(asdict(cfg)).items() if k != "progress" and not k.startswith("provenance")}


def marker_metrics(marker: dict[str, Any]) -> dict[str, float]:
    """Return a finished stage's metrics; null (how strict JSON keeps NaN) reads back as NaN."""
    return {k: float("nan") if v is None else v for k, v in marker["metrics"].items()}


def settings_changed(marker: dict[str, Any], settings: dict[str, str], cfg: Any) -> bool:
    """Whether a finished stage was made with other settings than ``cfg``'s.

    Markers from before settings were kept: no. A knob added since (absent from the marker) counts
    only when it is set to other than its default, which is what the stage used before it existed.
    """
    if "settings" not in marker:
        return False
    defaults = stage_settings(type(cfg)())
    recorded = {**{k: v for k, v in settings.items() if k not in marker["settings"] and v == defaults.get(k)},
                **marker["settings"]}
    return recorded != settings


def move_aside(folder: Path) -> Path:
    """Rename a finished stage's folder to the first free ``NAME.stale-K`` and return the new path."""
    k = 1
    while folder.with_name(f"{folder.name}.stale-{k}").exists():
        k += 1
    return folder.rename(folder.with_name(f"{folder.name}.stale-{k}"))


PARENT_FILE = "mlflow_run.json"  # the run folder's MLflow parent run, which a resume continues


def recorded_parent(run_dir: Path, uri: str) -> str | None:
    """Return the MLflow run an earlier process of this folder opened in the store ``uri``, if any."""
    path = run_dir / PARENT_FILE
    recorded = read_json(path) if path.exists() else {}
    return recorded.get("run_id") if recorded.get("tracking_uri") == uri else None

