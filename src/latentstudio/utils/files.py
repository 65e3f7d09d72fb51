"""File modes for what is written through temporary files.

`tempfile.mkstemp` and `mkdtemp` create files 0600 and folders 0700, whatever the umask: renamed into place,
a model, an encoder or a `projected_w.npz` would then be unreadable to anyone else (a gallery server running
as another user, a teammate on a shared disk). Once written, they get the mode a plain `open` or `mkdir`
would have given them.
"""

from __future__ import annotations

import os
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it (os.umask sets it for every thread while it reads).
    Linux reports it in /proc; elsewhere the usual 022 is assumed."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def set_default_mode(path: str | Path, directory: bool = False, umask: int | None = None) -> None:
    """Give a file (or folder) made by mkstemp (mkdtemp) the mode open (mkdir) would have given it (`umask`:
    the process's, read once by a caller that sets many)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~(current_umask() if umask is None else umask))
