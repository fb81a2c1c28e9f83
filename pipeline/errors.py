"""The domain errors the entry points report as one line instead of a traceback.

A leaf: it imports nothing of the pipeline, so any module may raise these and the entry point can
catch them before importing torch. Every one derives from ``spaces.errors.DomainError``.
"""

from spaces.errors import DomainError, InvalidArchError, UnknownSpaceError


class ConfigError(DomainError, ValueError):
    """A broken configuration value; names the key and the fix."""


class DatasetUnavailableError(DomainError, RuntimeError):
    """A dataset that cannot be loaded here (offline, missing package); names the fix."""


class EvaluatorError(DomainError, ValueError):
    """Bad evaluator input (missing table, unknown dataset, ...), with the fix in the message."""


class MissingArtifactError(DomainError, FileNotFoundError):
    """A stage asked for an artifact that no earlier stage wrote."""


class RunFolderError(DomainError, ValueError):
    """A run folder's file that cannot be read (cut, corrupt); names the file and what to do."""


DOMAIN_ERRORS: tuple[type[Exception], ...] = (DomainError,)
__all__ = ["DOMAIN_ERRORS", "ConfigError", "DatasetUnavailableError", "DomainError", "EvaluatorError",
           "InvalidArchError", "MissingArtifactError", "RunFolderError", "UnknownSpaceError", "domain_cause"]


def domain_cause(err: BaseException) -> Exception | None:
    """Return the domain error behind ``err`` (itself, or what Hydra's instantiate wrapped), else None."""
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 5:
        if isinstance(current, DOMAIN_ERRORS):
            return current
        current, seen = current.__cause__, seen + 1
    return None
