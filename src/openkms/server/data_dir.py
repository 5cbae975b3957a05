"""The data directory: owner-only (0700, files 0600) and usable before anything else starts.

The process umask is narrowed to 077 before the first file is written, so every file openkms
(or SQLite, for its -wal and -shm files) makes there is owner-only without each writer having
to remember: the databases, the audit trail, the development root key, the shared sequence
file, the shares an operator asks to be written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

OWNER_ONLY_UMASK = 0o077


class DataDirectoryError(RuntimeError):
    """The data directory cannot be used; the message names it and the cause."""


def restrict_new_files() -> None:
    os.umask(OWNER_ONLY_UMASK)


def prepare_data_dir(path: Path) -> list[str]:
    """Make ``path`` (0700) if it does not exist and check that this user can use it.
    Returns the loose permissions found (the directory's or its files'), one line each."""
    restrict_new_files()
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise DataDirectoryError(
            f"cannot make the data directory {path}: {error.strerror or error}"
        ) from None
    if not path.is_dir():
        raise DataDirectoryError(f"the data directory {path} is not a directory")
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise DataDirectoryError(
            f"the data directory {path} is not readable and writable by this user"
        )
    return loose_permissions(path)


def loose_permissions(path: Path) -> list[str]:
    found = []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        found.append(f"the data directory {path} is {mode:04o} (others can read or enter it)")
    for child in sorted(path.iterdir()):
        try:
            child_mode = stat.S_IMODE(child.lstat().st_mode)
        except OSError:
            continue  # gone meanwhile (an SQLite -shm file)
        if child.is_file() and child_mode & 0o077:
            found.append(f"{child} is {child_mode:04o} (others can read or write it)")
    return found
