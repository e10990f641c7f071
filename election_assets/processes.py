"""Which process runs a job, and whether it is still alive: what tells a killed run from a running one.

A run records its process when it starts executing (``defs/execution.py``); ``defs/automation/runs.py`` marks a run
failed once that process is gone. A process id alone is not enough, since the kernel reuses ids: the identity also
holds the process's start time and the boot it started in, read from ``/proc``. Standard library only.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


def _boot_id() -> str:
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of ``/proc/<pid>/stat``), or "" without /proc."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: count the fields after its closing one.
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: str  # "<boot id>/<start ticks>", or "" where the system has no /proc

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        ticks = _start_ticks(pid)
        return cls(host=socket.gethostname(), pid=pid, started=f"{_boot_id()}/{ticks}" if ticks else "")

    def is_gone(self) -> bool | None:
        """True when the process has ended (or its id now belongs to another process), False while it runs, and
        None when this machine cannot tell: the process ran on another host (a Kubernetes run pod, say)."""
        if self.host != socket.gethostname():
            return None
        if self.started:
            ticks = _start_ticks(self.pid)
            return not ticks or f"{_boot_id()}/{ticks}" != self.started
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it exists, under another user
            return False
        return False
