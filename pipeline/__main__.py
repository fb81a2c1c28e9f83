"""`python -m pipeline` / `nas-shrink`: the only @hydra.main. Prints the run id, the shrunk-space path and how to open the run."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from pipeline import CONF_DIR, interrupts
from pipeline.cli import check, normalise_argv, with_recorded_overrides
from pipeline.errors import DOMAIN_ERRORS, domain_cause
from pipeline.help import HELP_FLAGS, render_help
from pipeline.schema import register

RUN_DIR: list[Path] = []  # the folder of the run in progress, for the Ctrl-C message


register()  # the typed schemas the config groups name (pipeline/schema.py), before Hydra composes


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Run the shrinkage pipeline, report where its results are and return the run's ``objective`` (for sweepers)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pipeline.sweep import sweep_record

    hydra_cfg = HydraConfig.get()
    hydra_out = Path(hydra_cfg.runtime.output_dir)
    sweep = sweep_record(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else {}
    parallel = hydra_cfg.mode == RunMode.MULTIRUN and hydra_cfg.runtime.choices.get("hydra/launcher") not in (None, "basic")
    with job_prefix(f"[job {hydra_cfg.job.num}] ") if parallel else contextlib.nullcontext():
        return _job(cfg, hydra_cfg, hydra_out, sweep)


@contextlib.contextmanager
def job_prefix(prefix: str) -> Iterator[None]:
    """Prefix every line this job prints, so the jobs of a parallel sweep (joblib) read apart on one console."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Prefixed(sys.stdout, prefix), Prefixed(sys.stderr, prefix)
    try:
        yield
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        sys.stdout, sys.stderr = saved


class Prefixed:
    """A text stream that puts ``prefix`` at the start of every line it passes on."""

    def __init__(self, stream: Any, prefix: str) -> None:
        self.stream, self.prefix, self.at_start = stream, prefix, True

    def write(self, text: str) -> int:
        """Write ``text`` with the prefix at each line start."""
        out = []
        for piece in text.splitlines(keepends=True):
            out.append((self.prefix if self.at_start else "") + piece)
            self.at_start = piece.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _job(cfg: DictConfig, hydra_cfg: Any, hydra_out: Path, sweep: dict[str, Any]) -> float | None:
    """Run one job of the command (or the command itself) and print where its results are."""
    from pipeline.run import run
    from pipeline.rundir import resolve_resume

    try:
        run_dir = resolve_resume(str(cfg.resume), cfg.tracking.uri, cfg.tracking.experiment) if cfg.resume else hydra_out
        RUN_DIR[:] = [run_dir]
        result = run(cfg, run_dir, hydra_out / ".hydra", sweep_parent=sweep.get("run_id"),
                     overrides=list(hydra_cfg.overrides.task), swept=sweep.get("swept"))
    except Exception as err:
        cause = domain_cause(err)
        if cause is None:
            folder = RUN_DIR[0] if RUN_DIR else None
            message = write_failure(err, folder) or server_failure(err, str(cfg.tracking.uri), folder)
            if message is None:
                raise
            sys.exit(f"error: {message}")
        sys.exit(f"error: {cause}")
    uri = str(cfg.tracking.uri)
    serve = "" if uri.startswith(("http://", "https://")) else f" after: mlflow ui --backend-store-uri {uri}"
    print(f"MLflow run id: {result.run_id}  (open {result.url}{serve})")
    print(f"Runs compared by their headline metrics: {result.table_url}")
    print(f"Shrunk space: {result.shrunk_space}")
    return result.objective


# Why a write can fail that the user, not the code, must fix: errno -> what to do.
WRITE_FIXES = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space or raise the quota",
               errno.EACCES: "make it writable or run elsewhere", errno.EPERM: "make it writable or run elsewhere",
               errno.EROFS: "run on a writable file system"}


def write_failure(err: BaseException, folder: Path | None = None) -> str | None:
    """Return a one-line message for a write the machine refused (full disk, read-only file), else None."""
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 5:
        if isinstance(current, OSError) and current.errno in WRITE_FIXES:
            where = f" {current.filename}" if current.filename else (f" in {folder}" if folder else "")
            return (f"cannot write{where}: {current.strerror}; {WRITE_FIXES[current.errno]}, then run the same "
                    "command again (finished work is kept)")
        if "readonly database" in str(current) or "read-only database" in str(current):
            return (f"the MLflow store is read-only ({str(current).splitlines()[0][:120]}); make mlflow.db and its "
                    "folder writable or set tracking.uri, then run the same command again (finished work is kept)")
        current, seen = current.__cause__ or current.__context__, seen + 1
    return None


def server_failure(err: BaseException, uri: str, folder: Path | None) -> str | None:
    """Return a one-line message when the MLflow tracking server stopped answering mid-run, else None."""
    text = str(err)
    if not uri.startswith(("http://", "https://")) or not ("API request" in text or "Max retries" in text):
        return None
    kept = f"every finished stage is kept in {folder}; " if folder else ""
    return (f"tracking server {uri} stopped answering ({text.splitlines()[0][:160]}); {kept}start it again and "
            f"resume with: python -m pipeline resume={folder or 'RUN_DIR'}")


def _terminate(signum: int, frame: Any) -> None:
    """Turn SIGTERM into the same orderly stop as Ctrl-C, so MLflow marks the run KILLED."""
    raise KeyboardInterrupt


def interrupted_message(run_dir: Path | None, program: str, sweep_dir: Path | None = None,
                        argv: list[str] | None = None) -> str:
    """Say, in at most two lines, that nothing is lost and how to continue."""
    if sweep_dir is not None:  # a sweep: its jobs' folders hold what finished; the same command continues them
        again = " ".join(a for a in argv or [] if not a.startswith("hydra.sweep.dir="))
        return (f"interrupted: every finished job, evaluation and stage of the sweep is kept in {sweep_dir}\n"
                f"continue with: {program} {again} hydra.sweep.dir={sweep_dir}")
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
        if any(a in HELP_FLAGS for a in argv):  # Hydra's own help recomposes every group: seconds of CPU
            print(render_help(argv))
            return
        cfg = check(argv)
        if cfg is not None and cfg.get("resume"):
            from pipeline.rundir import resolve_resume

            run_dir = resolve_resume(str(cfg.resume), cfg.tracking.uri, cfg.tracking.experiment)
            argv = with_recorded_overrides(argv, run_dir)
            check(argv)
    except DOMAIN_ERRORS as err:
        sys.exit(f"error: {err}")
    sys.argv = [sys.argv[0], *argv]
    signal.signal(signal.SIGTERM, _terminate)
    interrupts.install()
    try:
        main()
    except KeyboardInterrupt:
        program = "python -m pipeline" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
        from pipeline.sweep import SWEEP_DIR

        print("\n" + interrupted_message(RUN_DIR[0] if RUN_DIR else None, program, SWEEP_DIR[0] if SWEEP_DIR else None,
                                         argv), file=sys.stderr)
        # Every file and the MLflow run are closed by now. Leave without the interpreter's teardown: an
        # interrupt that landed inside a lazy torch import makes that teardown end the process by SIGINT
        # (exit -2) instead of the 130 a shell expects.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)


if __name__ == "__main__":
    cli()
