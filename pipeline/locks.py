"""One process at a time per run folder or benchmark table: an OS lock, released when the process ends.

``flock`` locks die with their process, so a killed run never leaves a stale lock behind and
its folder can be resumed at once; a second process meets the lock and is refused in one line
that names the holder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import ConfigError


@contextlib.contextmanager
def exclusive(lock_file: Path, what: str, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the block; refuse (or, with ``wait``, queue) when another holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no OS lock to take; the folder is unguarded
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_file.open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ConfigError(f"{what} is in use by {holder}; wait for it to finish, or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock
