"""Another run's ``flock``, held from the test process through a file of its own."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def hold(folder: Path) -> int:
    """An exclusive ``flock`` on ``folder`` through a new open file (so it conflicts with this
    process's other ones, as another run's would); closing the descriptor lets it go."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def locked(folder: Path | int) -> bool:
    """Is ``folder`` (or the folder open as that descriptor) locked through another open file?"""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY) if isinstance(folder, Path) else folder
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        if isinstance(folder, Path):
            os.close(fd)
    return False
