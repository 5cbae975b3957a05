"""Whether a process still runs: for files that worker processes leave behind (metrics,
connection shares), which a replacement must tell from those of live siblings."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's
        return True
    return True
