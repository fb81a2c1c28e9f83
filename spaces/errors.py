"""Domain errors raised by search spaces; each names the bad value and the fix."""


class DomainError(Exception):
    """Bad input a user can fix: the entry points print its message as one line, never a traceback."""


class InvalidArchError(DomainError, ValueError):
    """An architecture (or its string) that is not a member of the space."""


class UnknownSpaceError(DomainError, ValueError):
    """A space name or target that no registered space answers to."""
