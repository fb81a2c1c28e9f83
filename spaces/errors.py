"""Domain errors raised by search spaces; each names the bad value and the fix."""


class InvalidArchError(ValueError):
    """An architecture (or its string) that is not a member of the space."""


class UnknownSpaceError(ValueError):
    """A space name or target that no registered space answers to."""
