"""Check a command line before Hydra runs it, so a mistake ends in one line that names the fix.

Hydra answers a misspelt key, an unknown option or a missing launcher plugin with a multi-line
composition error and a hint about ``HYDRA_FULL_ERROR``. The entry points compose the config
once here first (a few hundred milliseconds, no evaluation) and turn those failures into the
project's one-line ``ConfigError`` with the closest valid names.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pipeline import CONF_DIR
from pipeline.checks import check_finite, check_seed, check_values, check_writable
from pipeline.errors import ConfigError

# `hydra.run.dir` ends in the process id: two runs started in the same second get two folders.
OmegaConf.register_new_resolver("pid", os.getpid, replace=True, use_cache=True)

# Hydra flags that take a value (the value is not an override).
VALUE_FLAGS = frozenset({"-cd", "--config-dir", "-cn", "--config-name", "-cp", "--config-path",
                         "-c", "--cfg", "-p", "--package", "--experimental-rerun"})
# Flags after which Hydra prints something and exits; nothing to check.
INFO_FLAGS = frozenset({"-h", "--help", "--hydra-help", "-i", "--info", "-sc", "--shell-completion", "--version"})
# Launcher plugins: the module they install and the pip command that brings them.
LAUNCHERS = {
    "joblib": ("hydra_plugins.hydra_joblib_launcher", "pip install 'nas-shrink[parallel]'"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "pip install hydra-ray-launcher 'ray[default]<3'"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "pip install hydra-submitit-launcher"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "pip install hydra-submitit-launcher"),
}


@dataclass
class CommandLine:
    """An entry point's arguments split into Hydra flags and overrides."""

    overrides: list[str] = field(default_factory=list)
    config_dir: str | None = None
    config_name: str | None = None
    info: bool = False  # --help and friends: Hydra prints and exits


def split_argv(argv: list[str]) -> CommandLine:
    """Separate Hydra's flags (and their values) from the overrides."""
    line, i = CommandLine(), 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=") if arg.startswith("-") else (arg, "", "")
        if name in INFO_FLAGS:
            line.info = True
        elif name in VALUE_FLAGS:
            value = inline if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            i += 0 if eq else 1
            if name in ("-cd", "--config-dir"):
                line.config_dir = value
            elif name in ("-cn", "--config-name"):
                line.config_name = value
        elif not arg.startswith("-"):
            line.overrides.append(arg)
        i += 1
    return line


def normalise_argv(argv: list[str]) -> list[str]:
    """Accept ``+space=NAME`` as well as ``space=NAME``.

    ``space`` has a default in the defaults list, where Hydra answers ``+space=`` with "Multiple
    values for space"; users coming from "append a group" docs type it anyway, so both spell the
    same override.
    """
    return [a[1:] if a.startswith("+space=") else a for a in argv]


def _parse(text: str) -> Any:
    """Parse one override, or raise a one-line ConfigError."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(text)
    except HydraException as err:
        reason = str(err).splitlines()[0]
        raise ConfigError(f"cannot read override {text!r} ({reason}); write KEY=VALUE, e.g. shrink.budget=100") from None


def first_values(overrides: list[str]) -> list[str]:
    """Replace each sweep (``seed=0,1,2``) by its first value, so one composition checks the sweep's shape."""
    out = []
    for text in overrides:
        parsed = _parse(text)
        if not parsed.key_or_group:
            raise ConfigError(f"override {text!r} has no key; write KEY=VALUE, e.g. seed=3")
        if parsed.is_sweep_override() and not parsed.is_hydra_override():
            try:
                values = list(parsed.sweep_string_iterator())
            except Exception:  # a glob sweep lists its values only against the config: Hydra checks it
                continue
            if parsed.key_or_group == "seed":
                for value in values:
                    check_seed(value)
            text = f"{parsed.get_key_element()}={values[0]}" if values else text
        out.append(text)
    return out


def closest(word: str, options: list[str]) -> str:
    """Return ``; did you mean X?`` for the closest option, or an empty string."""
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f"; did you mean {match[0]}?" if match else ""


def compose(config_name: str, overrides: list[str], config_dir: str | None = None, hydra_node: bool = True) -> Any:
    """Compose the config as Hydra will, raising Hydra's errors: the one composer of the entry points, tests and
    experiments. ``hydra_node=False`` gives the config as the job sees it (no ``hydra`` key)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from pipeline.schema import register

    register(config_dir)
    extra = [f"hydra.searchpath=[file://{Path(config_dir).resolve()}]"] if config_dir else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(CONF_DIR, version_base="1.3"):
            return hydra_compose(config_name, overrides=[*overrides, *extra], return_hydra_config=hydra_node)
    finally:
        GlobalHydra.instance().clear()


def check(argv: list[str], config_name: str = "config") -> Any:
    """Compose ``argv``'s config once, raising a one-line ConfigError for anything Hydra would refuse; return it."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    line = split_argv(argv)
    if line.info:
        return None
    overrides = first_values(line.overrides)
    for text in overrides:
        if text.startswith("hydra/launcher="):
            _check_launcher(text.split("=", 1)[1])
    name = line.config_name or config_name
    try:
        cfg = compose(name, overrides, line.config_dir)
    except MissingConfigException as err:
        raise ConfigError(_missing_option(err)) from None
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(_bad_override(err, overrides, name, line.config_dir)) from None
    _check_added_keys(overrides, cfg, line.config_dir)
    if "seed" in cfg:  # first: other groups interpolate it (evaluator.seed: ${seed})
        check_seed(cfg.seed)
    check_finite(cfg)
    check_values(cfg, name)
    check_writable(cfg, multirun=bool({"-m", "--multirun"} & set(argv)))
    return cfg


def _check_added_keys(overrides: list[str], cfg: Any, config_dir: str | None) -> None:
    """Refuse ``+foo=1`` at the top level: nothing reads a key the config does not declare (a group, ``+space=toy``, is fine)."""
    dirs = [Path(CONF_DIR), *([Path(config_dir)] if config_dir else [])]
    known = sorted(str(k) for k in cfg if str(k) != "hydra")
    for text in overrides:
        if not text.startswith("+") or "=" not in text:
            continue
        key = _key(text)
        if "." in key or "/" in key or any((d / key).is_dir() for d in dirs):
            continue
        others = [k for k in known if k != key]
        raise ConfigError(f"{text} adds a top-level key {key!r} that nothing reads{closest(key, others)} "
                          f"(top-level keys: {', '.join(others)}); remove it")


def _key(text: str) -> str:
    """Return an override's key without its ``+``/``++``/``~`` prefix."""
    return text.split("=", 1)[0].lstrip("+~")


def with_recorded_overrides(argv: list[str], run_dir: Path) -> list[str]:
    """Put the overrides ``run_dir`` was started with before ``argv``, so ``resume=DIR`` alone continues it.

    A key given again keeps the new value; the runner then refuses it by name when it would change
    a result (pipeline/run.py: prepare_run_dir).
    """
    from omegaconf import OmegaConf

    recorded_file = run_dir / ".hydra" / "overrides.yaml"
    if not recorded_file.is_file():
        return argv
    recorded = migrate([str(o) for o in OmegaConf.load(recorded_file)])
    launch = run_dir / LAUNCH_FILE
    if launch.is_file():  # a supernet trained by torchrun (pipeline.supernet) after a supernet=none run: search it
        from pipeline.artifacts import read_json

        trained = [str(o) for o in read_json(launch)["overrides"]]
        recorded = [o for o in recorded if _key(o).partition(".")[0] != "supernet"] + trained
    given = {_key(a) for a in split_argv(argv).overrides}
    return [o for o in recorded if _key(o) not in given and _key(o) != "resume"] + argv


LAUNCH_FILE = "supernet/launch.json"  # written by `torchrun -m pipeline.supernet RUN_DIR`: the settings it trained with


def migrate(overrides: list[str]) -> list[str]:
    """Rewrite flat stage keys that runs made before the per-stage nodes recorded (shrink.radius -> shrink.pockets.radius)."""
    flat = [o for o in overrides if _key(o).partition(".")[0] in ("shrink", "supernet") and _key(o).count(".") == 1]
    if not flat:
        return overrides
    try:  # the shipped layout of the recorded method: where each of its stage keys lives now
        base = compose("config", [o for o in overrides if _key(o) == "shrink"][-1:])
    except Exception:  # a method of the user's own --config-dir: left for composition to name
        return overrides
    out = []
    for text in overrides:
        group, _, leaf = _key(text).partition(".")
        homes = moved(base[group], leaf) if text in flat and leaf not in base[group] else []
        out += [text.replace(f"{group}.{leaf}", f"{group}.{home}.{leaf}", 1) for home in homes] or [text]
    return out


def _check_launcher(option: str) -> None:
    """Refuse a known launcher whose plugin is not installed, naming the pip command."""
    if option in LAUNCHERS and not _has_module(LAUNCHERS[option][0]):
        raise ConfigError(f"hydra/launcher={option} needs its Hydra plugin, which is not installed; "
                          f"run: {LAUNCHERS[option][1]}")


def _missing_option(err: Any) -> str:
    """Explain an unknown group option (``space=nb2011``), naming the closest and every valid one."""
    missing = err.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    if not group:
        return f"config {missing!r} not found in {CONF_DIR}; " + str(err).splitlines()[0]
    options = sorted(err.options or [])
    return (f"unknown {group} option {option!r}{closest(option, options)} "
            f"(choose one of: {', '.join(options)}; or add {group}/{option}.yaml under --config-dir)")


def _has_module(name: str) -> bool:
    """Return whether ``name`` can be imported (a plugin installed into hydra_plugins)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _bad_override(err: Exception, overrides: list[str], name: str, config_dir: str | None) -> str:
    """Explain an override Hydra could not apply, naming the nearest existing key."""
    text = " ".join(str(err).split())
    key = _quoted_key(str(err))
    if key is None:
        return _wrong_type(err) or f"bad override ({text[:300]})"
    base = _base_config(name, overrides, config_dir)
    parent, _, leaf = key.rpartition(".")
    node = base
    for part in parent.split(".") if parent else []:
        node = node.get(part) if hasattr(node, "get") else None
    if node is None or not hasattr(node, "keys"):
        return _missing_node(key, base) or f"unknown key {key!r} ({text[:200]})"
    keys = sorted(str(k) for k in node if str(k) != "hydra")
    where = f"under {parent!r}" if parent else "at the top level"
    group = parent.partition(".")[0]
    relocated = _elsewhere(key, base, overrides) if group in TYPED_GROUPS and group in base else None
    if relocated:
        return relocated
    hint = closest(leaf, keys)
    if hint:
        return f"unknown key {key!r}{hint.replace('mean ', f'mean {parent}.' if parent else 'mean ')}"
    if group in TYPED_GROUPS:  # a schema fixes these keys: an unknown one belongs to another method or stage
        return f"unknown key {key!r}: not a setting of this {parent} config (its keys: {', '.join(keys)})"
    added = f"; add a new key with +{key}=..." if parent else ""  # a new top-level key is read by nothing
    return f"unknown key {key!r} (keys {where}: {', '.join(keys)}{added})"


TYPED_GROUPS = ("shrink", "supernet", "tracking")  # groups with a schema (pipeline/schema.py)


def moved(group: Any, leaf: str) -> list[str]:
    """Return the stage nodes of ``group`` that set ``leaf`` themselves (not by copying another node's value)."""
    return [str(k) for k in group if OmegaConf.is_dict(group[k]) and leaf in group[k]
            and not OmegaConf.is_interpolation(group[k], leaf)]


def _elsewhere(key: str, base: Any, overrides: list[str]) -> str | None:
    """Name where a stage key lives when it was set on the group (the flat layout) or on another stage's node."""
    parent, _, leaf = key.rpartition(".")
    group = parent.partition(".")[0]
    homes = [h for h in moved(base[group], leaf) if f"{group}.{h}" != parent]
    value = next((o.split("=", 1)[1] for o in overrides if _key(o) == key), "VALUE")
    writes = " or ".join(f"{group}.{h}.{leaf}={value}" for h in homes)
    if homes and parent == group:  # a flat key of before the per-stage nodes (shrink.radius)
        return f"{key} has moved into its stage's node: write {writes}"
    return f"unknown key {key!r}: {leaf} is a setting of another stage; write {writes}" if homes else None


def _missing_node(key: str, base: Any) -> str | None:
    """Explain ``shrink.<stage>.<key>`` for a stage the chosen method does not run."""
    group, _, rest = key.partition(".")
    node = rest.partition(".")[0]
    if group not in TYPED_GROUPS or group not in base or not rest:
        return None
    nodes = [str(k) for k in base[group] if OmegaConf.is_dict(base[group][k]) and str(k) != "plan"]
    return (f"unknown key {key!r}: this {group} config has no {node!r} node{closest(node, nodes)} "
            f"(its nodes: {', '.join(nodes)}; another method may run that stage)")


def _wrong_type(err: Exception) -> str | None:
    """Explain a value the typed schema (pipeline/schema.py) refused: the full key, the value, the type wanted."""
    from omegaconf.errors import ValidationError

    cause = err.__cause__
    if not isinstance(cause, ValidationError) or cause.full_key is None:
        return None
    reason = str(cause).splitlines()[0]
    return f"{cause.full_key}: {reason}; give a value of that type, e.g. {cause.full_key}={_example(reason)}"


def _example(reason: str) -> str:
    """Return an example value of the type a ValidationError names."""
    for word, example in (("to Integer", "100"), ("to Float", "0.5"), ("valid bool", "true")):
        if word in reason:
            return example
    return "VALUE"


def _quoted_key(message: str) -> str | None:
    """Return the key Hydra names in ``Could not override 'KEY'``, if that is the error."""
    marker = "Could not override '"
    if marker not in message:
        return None
    return message.split(marker, 1)[1].split("'", 1)[0]


def _base_config(name: str, overrides: list[str], config_dir: str | None) -> Any:
    """Compose with only the group choices of ``overrides`` (to list the keys that do exist)."""
    choices = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0] and not o.startswith(("+", "~"))]
    for attempt in (choices, []):
        try:
            return compose(name, attempt, config_dir)
        except Exception:  # an invalid choice among them: fall back to the plain defaults
            continue
    return {}
