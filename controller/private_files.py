"""File modes set in code: state files 0600, directories we create 0700.

systemd's `UMask=0077` gives the same result under the shipped units, but the
stores hold alarm history and the fleet directory holds keys and passwords:
their modes must not depend on how the process was started (a shell with
umask 022, a container, a test).
"""

from __future__ import annotations

import os
from pathlib import Path

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> None:
    """Create `path` (and missing parents) as 0700; an existing directory is left alone.

    Existing directories may be shared (/var/lib, /tmp): narrowing them is not ours to do.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
        directory.chmod(0o700)


def private_sqlite(path: str) -> None:
    """Create an SQLite file as 0600 before SQLite does, and narrow an existing one.

    SQLite creates its -wal and -shm files with the main file's mode, so they follow.
    """
    if path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    private_dir(file.parent)
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, *(path + side for side in SQLITE_SIDE_FILES)):
        if os.path.exists(name) and (os.stat(name).st_mode & 0o077):
            os.chmod(name, 0o600)
