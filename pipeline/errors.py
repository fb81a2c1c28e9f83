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
