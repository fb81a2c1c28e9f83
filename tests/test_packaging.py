"""The built wheel is the product: it ships the configs and runs outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib

from tests.conftest import HANG_GUARD_S, ROOT

SOURCES = ("pyproject.toml", "README.md", "pipeline", "spaces", "conf")


def test_the_wheel_lists_every_package_on_disk() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {str(p.parent.relative_to(ROOT)).replace(os.sep, ".")
               for top in ("pipeline", "spaces") for p in (ROOT / top).rglob("__init__.py")}
    assert listed == on_disk | {"pipeline.conf"}


def _copy_sources(dest: Path) -> None:
    """Copy what the build needs (and nothing else) so the checkout gains no build/ folder."""
    import shutil

    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)


def test_wheel_installed_in_a_fresh_venv_runs_the_toy_pipeline(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel offline needs setuptools in this environment")
    src, dist, venv, work = (tmp_path / n for n in ("src", "dist", "venv", "work"))
    src.mkdir()
    work.mkdir()
    _copy_sources(src)
    run = lambda *cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_GUARD_S, **kw)  # noqa: E731
    built = run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src), "-w", str(dist))
    assert built.returncode == 0, built.stderr
    assert run(sys.executable, "-m", "venv", "--without-pip", str(venv)).returncode == 0
    # The fresh venv sees this environment's dependencies (torch, mlflow, ...) through a .pth line,
    # not its editable install: that hook lives in a .pth file, which a path added this way never reads.
    py = venv / "bin" / "python"
    purelib = run(str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("nas_shrink-*.whl"))
    unpacked = run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", purelib, str(wheel))
    assert unpacked.returncode == 0, unpacked.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = run(str(py), "-c", "import pipeline; print(pipeline.__file__, pipeline.CONF_DIR)", cwd=work, env=env)
    module, conf = where.stdout.split()
    assert module.startswith(purelib) and conf == str(Path(purelib) / "pipeline" / "conf"), where.stdout
    toy = run(str(py), "-m", "pipeline", "space=toy", "supernet=none", "progress=false", cwd=work, env=env)
    assert toy.returncode == 0, toy.stderr
    shrunk = Path(toy.stdout.split("Shrunk space: ")[1].split()[0])
    assert shrunk.is_file() and str(shrunk).startswith(str(work))
