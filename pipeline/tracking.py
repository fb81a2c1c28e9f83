"""MLflow bookkeeping: a parent run per invocation, nested runs per round and stage."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline.locks import exclusive

# Alembic and MLflow print a line per migration step when a fresh SQLite store is created; keep output readable.
logging.getLogger("alembic").setLevel(logging.WARNING)
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested mapping to dotted keys with string values (MLflow params)."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
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
        from pipeline.errors import ConfigError  # here: pipeline.errors imports modules that import this one

        reason = getattr(err, "reason", err)
        raise ConfigError(f"tracking.uri={uri!r}: no MLflow server answers ({reason}); start one with "
                          f"`mlflow server --host 0.0.0.0 --port 5000` or drop tracking.uri for the "
                          f"embedded sqlite:///mlflow.db") from None


def sqlite_file(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` tracking URI, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


class Tracker:
    """Thin layer over ``MlflowClient`` with explicit run ids (no global active-run state)."""

    def __init__(self, uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        check_server(uri)
        self.uri = uri
        db = sqlite_file(uri)
        # Creating a SQLite store is a schema migration that two processes must not run at once.
        with exclusive(db.with_name(db.name + ".lock"), f"MLflow store {db}", wait=True) if db else contextlib.nullcontext():
            try:
                self.client = MlflowClient(tracking_uri=uri)
                found = retry_locked(self.client.get_experiment_by_name, experiment)
            except Exception as err:
                if db is None or "alembic" not in str(err).lower():
                    raise
                from pipeline.errors import ConfigError  # here: pipeline.errors imports modules that import this one

                raise ConfigError(f"MLflow store {db} was left half-created (a process died while creating it): "
                                  f"move it aside (mv {db} {db}.broken) and run again, or set tracking.uri") from None
        self.experiment_id = found.experiment_id if found else self._create(experiment)

    def _create(self, name: str) -> str:
        """Create the experiment, tolerating a concurrent creator."""
        try:
            return retry_locked(self.client.create_experiment, name)
        except Exception:  # another process created it between our lookup and create
            return self.client.get_experiment_by_name(name).experiment_id

    @contextlib.contextmanager
    def run(self, name: str, parent: str | None = None, tags: Mapping[str, str] | None = None) -> Iterator[str]:
        """Open a (nested) run, yield its id, and close it FINISHED, FAILED or KILLED."""
        all_tags = dict(tags or {})
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run = retry_locked(self.client.create_run, self.experiment_id, run_name=name, tags=all_tags)
        run_id = run.info.run_id
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

        items = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):
            retry_locked(self.client.log_batch, run_id, params=items[start : start + 100])

    def metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log finite metrics at ``step``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if math.isfinite(float(v))]
        if items:
            retry_locked(self.client.log_batch, run_id, metrics=items)

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
