"""The job system's reads and writes of run-dir files, never through a symlink.

A run dir is untrusted input (runs dirs are shared): every file read here goes through
store.open_inside (O_NOFOLLOW, regular files only). A refused file reads like a missing or
corrupt one, except where the caller asks for the refusal (the log readers raise it).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from newsclf import runschema, store


def read_json(run_dir: Path, name: str, default: Any = None) -> Any:
    """A JSON file of the run dir; missing, corrupt or refused (symlink) -> `default`."""
    try:
        return store.read_json_inside(run_dir, name, default)
    except OSError:  # UnsafeRunFileError, EACCES, ...
        return default


def read_status(run_dir: Path) -> dict[str, Any]:
    """store.read_status (never follows a link; every field checked): missing, corrupt or refused ->
    state 'unknown', a value newsclf did not write -> state 'damaged', each with a reason."""
    return store.read_status(run_dir)


def update_status_if(run_dir: Path, allowed: Sequence[str] | None, check: Callable[[dict], bool] | None = None,
                     **updates: Any) -> dict[str, Any] | None:
    """Read-modify-write status.json under its lock, only when the current state is in `allowed`
    (None: any; "unknown" covers an unreadable state) and `check(status)` holds; returns the new
    status, or None when nothing was written. Fields that fail their check (runschema) are dropped on
    the way, and the file is replaced in the run folder itself, never written through a link."""
    with store.file_lock(Path(run_dir) / store.STATUS_LOCK):
        status = runschema.clean(runschema.STATUS, read_json(run_dir, store.STATUS))
        state = status.get("state") if status.get("state") in store.STATES else "unknown"
        if (allowed is not None and state not in allowed) or (check is not None and not check(status)):
            return None
        status.update(updates)
        status["updated"] = time.time()
        store.write_json_inside(run_dir, store.STATUS, status)
        return status


def update_status(run_dir: Path, **updates: Any) -> dict[str, Any]:
    return update_status_if(run_dir, None, **updates) or {}


def open_append(run_dir: Path, name: str):
    """Open a run-dir file for appending (created 0644), refusing a symlink or a non-regular file."""
    return store.append_inside(run_dir, name)


def request_stop(run_dir: Path) -> None:
    """store.request_stop without writing through a symlinked STOP file."""
    with open_append(run_dir, store.STOP) as fh:
        fh.write(str(time.time()).encode())


def log_size(run_dir: Path) -> int:
    try:
        with store.open_inside(run_dir, store.LOG) as fh:
            return os.fstat(fh.fileno()).st_size
    except OSError:
        return 0
