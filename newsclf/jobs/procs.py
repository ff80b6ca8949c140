"""Process identity and process trees, from /proc (Linux); never imports torch.

A process is recorded as {pid, start, boot, host}: the pid, its start time (clock ticks since boot,
field 22 of /proc/<pid>/stat), the kernel boot id and the host name, so a later process that reuses
the pid, or any process after a reboot, never passes for it — and a process of another machine (or
container) sharing the runs dir is never judged from this one's /proc (`on_this_machine`). Children this process starts are kept in
a registry and reaped, so they never linger as zombies that look alive.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

_CHILDREN: dict[int, subprocess.Popen] = {}
_CHILDREN_LOCK = threading.Lock()


def register_child(proc: subprocess.Popen) -> None:
    """Remember a child we started so reap_children() can collect it."""
    with _CHILDREN_LOCK:
        _CHILDREN[proc.pid] = proc


def reap_children() -> None:
    """Reap supervisors this process started, so they never linger as zombies."""
    with _CHILDREN_LOCK:
        for pid, proc in list(_CHILDREN.items()):
            if proc.poll() is not None:
                del _CHILDREN[pid]


@lru_cache(maxsize=1)
def boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


@lru_cache(maxsize=1)
def host_name() -> str:
    return socket.gethostname()


def on_this_machine(ident: dict[str, Any] | None) -> bool:
    """Was `ident` recorded on this machine? (Records made before hosts were recorded count as local.)

    A process of another machine cannot be looked up here: callers must not mark it dead or kill it.
    """
    host = ident.get("host") if isinstance(ident, dict) else None
    return not isinstance(host, str) or not host or host == host_name()


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) from /proc/<pid>/stat, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    rest = text[text.rfind(")") + 2:].split()  # comm may hold spaces and parentheses
    try:
        return rest[0], int(rest[1]), int(rest[19])  # fields 3, 4 and 22
    except (IndexError, ValueError):
        return None


def process_identity(pid: int) -> dict[str, Any]:
    """{pid, start, boot, host}: enough to tell this process from a later one that reuses its pid."""
    stat = proc_stat(pid)
    return {"pid": pid, "start": stat[2] if stat else None, "boot": boot_id(), "host": host_name()}


def process_alive(ident: dict[str, Any] | None) -> bool:
    """Is the process recorded in `ident` running on this machine (not a zombie, not a reused pid)?

    A record without a verifiable start time (an int, compared with /proc) is not alive: anyone can
    write {"pid": 1}. False for a process of another machine: ask `on_this_machine` before acting on a False."""
    if not isinstance(ident, dict) or not isinstance(ident.get("pid"), int) or isinstance(ident["pid"], bool) \
            or ident["pid"] <= 0:
        return False
    pid, start = ident["pid"], ident.get("start")
    reap_children()
    if ident.get("boot") and boot_id() and ident["boot"] != boot_id():
        return False
    have_proc = Path("/proc/self/stat").exists()
    if have_proc and (not isinstance(start, int) or isinstance(start, bool)):
        return False
    stat = proc_stat(pid)
    if stat is None:
        if have_proc:
            return False
        try:  # no /proc: best effort
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    state, _, started = stat
    if start is not None and started != start:
        return False
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # our own zombie (same start time): reap it
        return False
    return True


def descendants(pid: int) -> list[int]:
    """Pids of every live descendant of `pid` (a /proc snapshot)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[0] not in ("Z", "X"):
                children.setdefault(stat[1], []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def signal_tree(pgid: int | None, sig: int, extra_pids: Sequence[int] = ()) -> None:
    """Send `sig` to a process group and to some pids; never to our own group or to init."""
    if isinstance(pgid, int) and pgid > 1 and pgid != os.getpgrp():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in extra_pids:
        if pid > 1 and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def kill_everything(pgid: int, sig: int) -> None:
    """Signal a process group and every descendant of this process (the supervisor's cleanup)."""
    signal_tree(pgid, sig, descendants(os.getpid()))


# ---- the supervisor's side: children that outlive their parents ---------------------------------
def become_subreaper() -> None:
    """Orphaned descendants (torchrun workers live in their own sessions) get reparented to us."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def exited(pid: int) -> bool:
    """Has our child `pid` exited? (does not reap it, so its process group id stays reserved)"""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def reap_adopted(keep: int) -> None:
    """Reap every exited child except `keep` (adopted orphans of the trainer's tree)."""
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)
