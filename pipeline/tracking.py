"""MLflow bookkeeping: a parent run per invocation, nested runs per round and stage."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.locks import exclusive

# Alembic and MLflow print a line per migration step when a fresh SQLite store is created; keep output readable.
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
# A tracking server that stops answering ends the run in one line (pipeline/__main__.py), not a retry log.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # start/stop lines on every run


def flatten(tree: Mapping[str, Any], prefix: str = "", text: Callable[[Any], str] = str) -> dict[str, str]:
    """Flatten a nested mapping to dotted keys with values as ``text`` writes them (MLflow params)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}.", text))
        else:
            flat[name] = text(value)[:6000]
    return flat


def retry_locked(call: Callable[..., Any], *args: Any, attempts: int = 12, **kwargs: Any) -> Any:
    """Call an MLflow client method, retrying while SQLite reports the database locked.

    Parallel jobs (a joblib multirun) share one SQLite file; a writer that meets another
    writer's lock waits with jittered exponential backoff instead of losing its run or metric.
    """
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as err:  # MLflow wraps sqlite3.OperationalError in its own types
            if "locked" not in str(err).lower() or attempt == attempts - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def check_server(uri: str, timeout: float = 5.0) -> None:
    """Refuse an http(s) tracking URI whose server does not answer ``/health`` within ``timeout`` seconds.

    MLflow's client retries an unreachable server for minutes before a traceback; a user who
    typed a wrong host should hear so at once.
    """
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return  # the server answered (a proxy or an older server without /health): let MLflow talk to it
    except (OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(f"tracking.uri={uri!r}: no MLflow server answers ({reason}); start one with "
                          f"`mlflow server --host 0.0.0.0 --port 5000` or drop tracking.uri for the "
                          f"embedded sqlite:///mlflow.db") from None


def sqlite_file(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` tracking URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def create_store(db: Path) -> None:
    """Create a fresh SQLite store beside ``db`` and rename it into place: a kill mid-creation leaves no store."""
    from mlflow.tracking import MlflowClient

    db.parent.mkdir(parents=True, exist_ok=True)
    for stale in db.parent.glob(f"{db.name}.creating-*"):  # left by a creator that was killed; the caller holds the lock
        stale.unlink(missing_ok=True)
    tmp = db.with_name(f"{db.name}.creating-{os.getpid()}")
    try:
        MlflowClient(tracking_uri=f"sqlite:///{tmp}").search_experiments(max_results=1)  # runs the schema migrations
        os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def _disk_full(err: BaseException, db: Path) -> bool:
    """Tell whether ``err`` came from a full disk (SQLite's message, ENOSPC, or no room left beside ``db``)."""
    import errno
    import shutil

    chain, current = [], err
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any("disk is full" in str(e).lower() or getattr(e, "errno", None) == errno.ENOSPC for e in chain):
        return True
    try:
        return shutil.disk_usage(db.parent).free < 1 << 20
    except OSError:
        return False


def _free(db: Path) -> str:
    """Return the free space beside ``db``, for a message."""
    import shutil

    try:
        return f"{shutil.disk_usage(db.parent).free / 2**20:.1f} MiB"
    except OSError:
        return "unknown"


KIND_TAG = "mlflow.experimentKind"


class Tracker:
    """Thin layer over ``MlflowClient`` with explicit run ids (no global active-run state)."""

    def __init__(self, uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        check_server(uri)
        if uri.startswith(("http://", "https://")):
            # MLflow's defaults retry a dead server for minutes per call; a server that dies mid-run
            # should end the run within seconds (every finished stage is on disk for the resume).
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        self.uri = uri
        db = sqlite_file(uri)
        # Creating a SQLite store is a schema migration that two processes must not run at once.
        with exclusive(db.with_name(db.name + ".lock"), f"MLflow store {db}", wait=True) if db else contextlib.nullcontext():
            try:
                if db is not None and not db.exists():
                    create_store(db)
                self.client = MlflowClient(tracking_uri=uri)
                found = retry_locked(self.client.get_experiment_by_name, experiment)
            except Exception as err:
                if db is not None and _disk_full(err, db):
                    raise ConfigError(f"MLflow store {db}: the disk holding it is full ({_free(db)} free); free some "
                                      "space and run again, or set tracking.uri to a store elsewhere") from None
                if db is None or "alembic" not in str(err).lower():
                    raise
                raise ConfigError(f"MLflow store {db} was left half-created (a process died while creating it): "
                                  f"move it aside (mv {db} {db}.broken) and run again, or set tracking.uri") from None
        self.experiment_id = found.experiment_id if found else self._create(experiment)
        if found and KIND_TAG not in found.tags:  # an experiment made by an older version
            retry_locked(self.client.set_experiment_tag, self.experiment_id, KIND_TAG, "custom_model_development")
        # Runs of an earlier, interrupted process that a resume continues: (parent id, name) -> run id.
        self.recorded_runs: dict[tuple[str | None, str], str] = {}
        self.reopened: set[str] = set()

    def reopen(self, run_id: str) -> bool:
        """Continue an earlier run of this experiment: mark it RUNNING again and its unfinished descendants KILLED.

        Its finished descendants are remembered, so stages the resume reuses log nothing twice.
        Returns False (and changes nothing) when the run is not in this store and experiment.
        """
        try:
            run = retry_locked(self.client.get_run, run_id)
        except Exception:  # MLflow raises several types for an unknown or deleted id
            return False
        if run.info.experiment_id != self.experiment_id or run.info.lifecycle_stage != "active":
            return False
        retry_locked(self.client.update_run, run_id, status="RUNNING")
        self.reopened.add(run_id)
        parents, complete = [run_id], {run_id}  # complete: the run and finished runs under finished runs
        while parents:
            children = self._children(parents)
            for child in children:
                parent_id = child.data.tags["mlflow.parentRunId"]
                if child.info.status == "RUNNING":  # its process died: the run folder's lock says no one else runs it
                    retry_locked(self.client.set_terminated, child.info.run_id, "KILLED")
                elif child.info.status == "FINISHED" and parent_id in complete:
                    complete.add(child.info.run_id)
                    self.recorded_runs[(parent_id, child.info.run_name)] = child.info.run_id
            parents = [c.info.run_id for c in children]
        return True

    def _children(self, parents: list[str]) -> list[Any]:
        """Return every run whose parent is one of ``parents``."""
        return [run for parent in parents  # MLflow's filter has no IN for tags: one query per parent
                for run in retry_locked(self.client.search_runs, [self.experiment_id],
                                        filter_string=f"tags.mlflow.parentRunId = '{parent}'", max_results=50000)]

    def recorded(self, run_id: str) -> bool:
        """Tell whether ``run_id`` is a finished run of an earlier process, reused as it is."""
        return run_id in self.recorded_runs.values()

    def _create(self, name: str) -> str:
        """Create the experiment, tolerating a concurrent creator."""
        try:
            # MLflow 3 opens an experiment without a kind on its GenAI overview; these are training runs.
            return retry_locked(self.client.create_experiment, name, tags={KIND_TAG: "custom_model_development"})
        except Exception:  # another process created it between our lookup and create
            return self.client.get_experiment_by_name(name).experiment_id

    def url(self, run_id: str | None, query: str = "") -> str:
        """Return the address of a run (or of the runs table) in the MLflow UI's training-runs view."""
        base = self.uri.rstrip("/") if self.uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
        return f"{base}/#/experiments/{self.experiment_id}/runs" + (f"/{run_id}" if run_id else "") + query

    @contextlib.contextmanager
    def run(self, name: str, parent: str | None = None, tags: Mapping[str, str] | None = None,
            resume_id: str | None = None, reuse: bool = True) -> Iterator[str]:
        """Open a (nested) run, yield its id, and close it FINISHED, FAILED or KILLED.

        ``resume_id`` continues that run when this store still has it; with ``reuse``, a run an
        earlier process finished under the same parent and name is yielded as it is, status untouched.
        """
        if reuse and (parent, name) in self.recorded_runs:
            yield self.recorded_runs[(parent, name)]
            return
        if resume_id is not None and self.reopen(resume_id):
            run_id = resume_id
            self.tags(run_id, dict(tags or {}))
        else:
            all_tags = {**(tags or {}), **({"mlflow.parentRunId": parent} if parent else {})}
            run_id = retry_locked(self.client.create_run, self.experiment_id, run_name=name, tags=all_tags).info.run_id
        try:
            yield run_id
        except KeyboardInterrupt:
            retry_locked(self.client.set_terminated, run_id, "KILLED")
            raise
        except BaseException:
            retry_locked(self.client.set_terminated, run_id, "FAILED")
            raise
        retry_locked(self.client.set_terminated, run_id, "FINISHED")

    def params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params in batches (MLflow caps a batch at 100)."""
        from mlflow.entities import Param

        if run_id in self.reopened:
            # MLflow refuses to change a logged param: a resume logs only new keys and tags what changed.
            before = retry_locked(self.client.get_run, run_id).data.params
            changed = {k: str(v) for k, v in params.items() if k in before and before[k] != str(v)}
            if changed:
                self.tags(run_id, {"resume_changed_params": "; ".join(f"{k}={v}" for k, v in changed.items())[:5000]})
            params = {k: v for k, v in params.items() if k not in before}
        items = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):
            retry_locked(self.client.log_batch, run_id, params=items[start : start + 100])

    def metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log finite metrics at ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and math.isfinite(float(v))]
        if items:
            retry_locked(self.client.log_batch, run_id, metrics=items)

    def inputs(self, run_id: str, datasets: list[tuple[Any, str]]) -> None:
        """Log MLflow datasets as the run's inputs, each with its context (evaluation, training, ...)."""
        from mlflow.entities import DatasetInput, InputTag

        if datasets:
            entries = [DatasetInput(d._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])
                       for d, context in datasets]
            retry_locked(self.client.log_inputs, run_id, datasets=entries)

    def tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""
        for key, value in tags.items():
            retry_locked(self.client.set_tag, run_id, key, value)

    def artifacts(self, run_id: str, folder: Path, artifact_path: str | None = None) -> None:
        """Upload every file under ``folder``."""
        if folder.is_dir() and any(folder.iterdir()):
            retry_locked(self.client.log_artifacts, run_id, str(folder), artifact_path)

    def artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        """Upload one file."""
        retry_locked(self.client.log_artifact, run_id, str(path), artifact_path)


class Live:
    """Live counters of a working run: ``run/*`` metrics, at most one batch every ``every_s`` seconds."""

    def __init__(self, tracker: Tracker, run_id: str, every_s: float) -> None:
        self.tracker, self.run_id, self.every_s = tracker, run_id, every_s
        self.start = self.last = time.monotonic()

    def __call__(self, counters: Mapping[str, float]) -> None:
        """Log ``counters`` (step = seconds since the run started) unless the last batch is too recent."""
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.tracker.metrics(self.run_id, {f"run/{k}": v for k, v in counters.items()},
                                 step=int(now - self.start))


@contextlib.contextmanager
def system_metrics(run_id: str, uri: str, enabled: bool, every_s: float = 10.0) -> Iterator[None]:
    """Sample CPU / memory / GPU use into the run's ``system/*`` metrics while the block runs."""
    if not enabled:
        yield
        return
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    monitor = SystemMetricsMonitor(run_id, sampling_interval=every_s, tracking_uri=uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()

