"""The domain errors the entry point reports as one line instead of a traceback."""

from pipeline.context import MissingArtifactError
from pipeline.datasets import DatasetUnavailableError
from pipeline.evaluators.base import EvaluatorError
from spaces.errors import InvalidArchError, UnknownSpaceError
from spaces.shrunk import ShrunkSpaceError


class ConfigError(ValueError):
    """A broken configuration value; names the key and the fix."""


DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    ConfigError, DatasetUnavailableError, EvaluatorError, InvalidArchError,
    MissingArtifactError, ShrunkSpaceError, UnknownSpaceError,
)


def domain_cause(err: BaseException) -> Exception | None:
    """Return the domain error behind ``err`` (itself, or what Hydra's instantiate wrapped), else None."""
    seen = 0
    current: BaseException | None = err
    while current is not None and seen < 5:
        if isinstance(current, DOMAIN_ERRORS):
            return current
        current, seen = current.__cause__, seen + 1
    return None
