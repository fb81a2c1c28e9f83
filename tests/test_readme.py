"""Every shell command in README.md works as written: composed, run cheaply, or skipped for a stated reason."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD_S, ROOT

# Commands not run here, each with why (the prefix of the command line decides).
SKIPPED = {
    "python3 -m venv": "installs packages: CI runs the test set-up line itself; tests/test_packaging.py installs the wheel",
    "python -m pipeline.convert_nb201": "needs the official release; test_convert.py converts the shared copies",
    "python -m pipeline.convert_nb_macro": "needs the official release; test_convert.py converts the shared copy",
    "mlflow ": "starts a long-running server or UI",
    "torchrun ": "needs several GPUs",
    "pip install": "installs packages",
}
# Lines a user runs with a missing piece: they must end in one line naming it, within 10 s.
MISSING_PIECE = ("executor=ray", "tracking.uri=http", "resume=outputs/")


def readme_commands() -> list[str]:
    """Return every command line of README.md's ```bash blocks, comments stripped."""
    text = (ROOT / "README.md").read_text()
    lines = [ln for block in re.findall(r"```bash\n(.*?)```", text, re.S) for ln in block.splitlines()]
    return [re.sub(r"\s+#.*$", "", ln).strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


COMMANDS = readme_commands()


def test_the_readme_has_commands_and_each_is_handled() -> None:
    assert len(COMMANDS) >= 20
    for command in COMMANDS:
        handled = command.startswith(("python -m pipeline ", "python -m pipeline.bench ", "python -m pipeline.export ",
                                      "python -m pipeline.search "))
        assert handled or any(command.startswith(p) for p in SKIPPED), f"README command not checked here: {command}"


def _args(command: str, prefix: str) -> list[str]:
    return shlex.split(command)[len(prefix.split()):]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m pipeline ")])
def test_pipeline_command_composes(command: str) -> None:
    from pipeline.cli import LAUNCHERS, _has_module, check, normalise_argv
    from pipeline.errors import ConfigError

    args = normalise_argv(_args(command, "python -m pipeline"))
    launcher = next((a.split("=", 1)[1] for a in args if a.startswith("hydra/launcher=")), None)
    if launcher in LAUNCHERS and not _has_module(LAUNCHERS[launcher][0]):  # an optional plugin: named, with its pip line
        with pytest.raises(ConfigError, match=re.escape(LAUNCHERS[launcher][1])):
            check(args)
        return
    cfg = check(args)
    assert cfg is not None and "space" in cfg


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m pipeline.bench ")])
def test_bench_command_composes(command: str) -> None:
    from pipeline.cli import check

    assert check(_args(command, "python -m pipeline.bench"), "bench") is not None


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("python -m pipeline.search ")])
def test_search_command_composes(command: str) -> None:
    import pipeline.search  # noqa: F401 - registers the command's schema
    from pipeline.cli import check

    cfg = check(_args(command, "python -m pipeline.search"), "search")
    assert cfg is not None
    pipeline.search.check_settings(cfg)


def _run(command: str, cwd: Path, timeout: float = HANG_GUARD_S) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, *shlex.split(command)[1:]]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("command", [c for c in COMMANDS if any(m in c for m in MISSING_PIECE)])
def test_a_missing_piece_ends_in_one_line_before_any_work(command: str, tmp_path: Path) -> None:
    import importlib.util

    if "executor=ray" in command and importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed here; the README line needs a running cluster (address=auto)")
    done = _run(command, tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert not list(tmp_path.glob("outputs/*/*/round_*")), "the missing piece was found after evaluating"
    assert any(word in lines[0] for word in ("nas-shrink[ray]", "no MLflow server answers", "not a run directory",
                                             "neither a run directory"))


def test_toy_command_runs_as_written(tmp_path: Path) -> None:
    import re

    command = next(c for c in COMMANDS if "space=toy" in c)
    done = _run(command, tmp_path)
    assert done.returncode == 0, done.stderr
    # What the run prints: the round table, the budget spent, how to open MLflow, the shrunk space.
    assert "round  evals  evals_total  pockets  space_size" in done.stdout and "emitted: round " in done.stdout
    assert re.search(r"evaluations: \d+ spent of budget \d+\n", done.stdout), done.stdout[-800:]
    assert "mlflow ui --backend-store-uri sqlite:///mlflow.db" in done.stdout and (tmp_path / "mlflow.db").is_file()
    assert Path(done.stdout.split("Shrunk space: ")[1].split()[0]).is_file()


def test_export_command_runs_on_a_shrunk_space(tmp_path: Path) -> None:
    import numpy as np

    from pipeline.export import main as export_main
    from spaces.shrunk import Pocket, ShrunkSpace
    from spaces.toy import ToySpace

    command = next(c for c in COMMANDS if c.startswith("python -m pipeline.export "))
    space = ToySpace()
    archs = [space.to_str(a) for a in space.sample_unique(3, np.random.default_rng(0))]
    pocket = Pocket(0, archs[0], 1.0, 1, tuple((a, 1.0) for a in archs))
    source = ShrunkSpace(space, [pocket], "val_acc", {"seed": 0}).save(tmp_path / "shrunk_space.json")
    args = [str(source) if a.endswith("shrunk_space.json") else a for a in _args(command, "python -m pipeline.export")]
    args = [str(tmp_path / a) if a == "exported/" else a for a in args]
    assert export_main(args) == 0
    assert (tmp_path / "exported" / "archs.txt").read_text().split() == archs


def test_the_searcher_snippet_runs_as_written_on_a_shrunk_space_and_its_table(tmp_path: Path, toy_table: Path) -> None:
    from pipeline.run import run
    from tests.pipeline.test_run import toy_cfg

    shrunk = run(toy_cfg(tmp_path, toy_table, "supernet=none"), tmp_path / "run").shrunk_space
    text = (ROOT / "README.md").read_text()
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "SEARCHERS[" in b)
    snippet = (snippet.replace("outputs/2026-11-24/06-13-25/emit/shrunk_space.json", str(shrunk))
               .replace("benchmarks/nb201.csv", str(toy_table)).replace('"cifar10"', '"digits"'))
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert scope["best_arch"] in scope["shrunk"] and 0 < len(scope["new_evaluations"]) <= 100
