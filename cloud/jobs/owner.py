"""Which process runs a job, named so that another process can tell whether it still lives.

A run records its owner as host:pid:start (the process's start time, so a pid reused by a
later process is not mistaken for the owner). A process on the same host can see that the
owner is gone at once; one on another host cannot, and waits for the run's lease to end.
"Host" is the host name and, on Linux, the pid namespace: containers sharing the host's name
(its network, say) each number their own processes, so a pid seen from one says nothing of
another's.
"""

from __future__ import annotations

import os
import socket

import psutil


def _host() -> str:
    name = socket.gethostname()[:64]  # Linux's longest; the owner column holds 100
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no procfs: the host name alone
        return name
    return f"{name}#{namespace}"


def _name(process: psutil.Process) -> str:
    return f"{_host()}:{process.pid}:{process.create_time():.2f}"


def this_process() -> str:
    return _name(psutil.Process(os.getpid()))


def gone(owner: str) -> bool:
    """True when `owner` ran on this host (and pid namespace) and no process of that pid and
    start lives now; False when it lives, or ran elsewhere (unknown here)."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != _host() or not pid.isdigit():
        return False
    try:
        process = psutil.Process(int(pid))
        return _name(process) != owner or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # another user's process: it lives
        return False
