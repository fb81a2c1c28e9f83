"""Ctrl-C that always stops the run.

Python raises KeyboardInterrupt wherever the main thread happens to be when SIGINT arrives. When
that is a garbage-collection callback (SQLAlchemy's weakref callbacks, under MLflow), Python
prints "Exception ignored in ..." and carries on: measured, 1 in 6 Ctrl-Cs one second into an
evaluation kept the run going. The handler therefore also records the interrupt, the long loops
(each evaluation, each training epoch) call ``check()``, which raises it again if it was swallowed,
and the swallowed one is not reported (Python's "Exception ignored" traceback would be the user's
only sight of it, above the one-line resume hint).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

REQUESTED = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    """Record the interrupt, then raise it where the main thread is (Python's own behaviour)."""
    REQUESTED.set()
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT with ``_on_sigint`` in this process (the entry points call it)."""
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _quiet_interrupts(sys.unraisablehook)


def _quiet_interrupts(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """Return ``hook`` minus the "Exception ignored" report of a swallowed Ctrl-C (``check()`` re-raises it)."""
    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    return quiet


def check() -> None:
    """Raise KeyboardInterrupt when a Ctrl-C arrived earlier (possibly swallowed by a GC callback)."""
    if REQUESTED.is_set():
        raise KeyboardInterrupt
