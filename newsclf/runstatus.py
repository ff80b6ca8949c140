"""status.json of a run: the locked read-modify-write, the typed read, and the safe JSON and lock primitives.

Readers get the status parsed once (newsclf.runschema): missing, unreadable or refused reads as state
"unknown", a value newsclf never writes as state "damaged", each with a one-line reason. Writers
repair as they go (bad fields dropped) and replace the file in the run folder itself, never through
a link; the lock file is never followed or blocked on. Re-exported by newsclf.store.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import time
from pathlib import Path
from typing import Any, Iterator

from newsclf import runschema
from newsclf.runfiles import MAX_JSON_BYTES, UnsafeRunFileError, read_json_inside, write_json_inside
from newsclf.safeio import read_capped

STATUS = "status.json"
STATUS_LOCK = ".status.lock"
STATES = runschema.STATES  # what newsclf writes; readers also see "unknown" (unreadable) and "damaged"


def read_json(path: Path, default: Any = None) -> Any:
    """Read JSON; a missing, empty, corrupt, oversized, linked or non-regular file gives `default`.
    (Opened without blocking and without following a link: a FIFO or a planted link is never read.)"""
    try:
        return json.loads(read_capped(path, MAX_JSON_BYTES, nofollow=True))
    except (OSError, ValueError, RecursionError):
        return default


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) on `path`, created if needed; a link or a non-regular file in
    its place is refused (UnsafeRunFileError), never followed or blocked on."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENXIO):
            raise UnsafeRunFileError(f"{path} is a link or not a regular file; remove it") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeRunFileError(f"{path} is not a regular file; remove it")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def read_status(run_dir: Path) -> dict[str, Any]:
    """The status, every field checked (newsclf.runschema): missing, unreadable or refused (a link, a
    FIFO) reads as state 'unknown', a value newsclf did not write as state 'damaged', each with a reason."""
    try:
        raw = read_json_inside(run_dir, STATUS)
    except UnsafeRunFileError as exc:
        return {"state": "unknown", "reason": f"{STATUS} refused: {exc}"}
    except OSError:
        raw = None
    if not isinstance(raw, dict) or raw.get("state") not in STATES:
        return {"state": "unknown", "reason": "status.json missing or unreadable"}
    try:
        return runschema.parse_status(raw)
    except runschema.DamagedError as exc:
        return {"state": "damaged", "reason": str(exc)}


def update_status(run_dir: Path, **updates: Any) -> dict[str, Any]:
    """Read-modify-write status.json under a lock; returns the new status. Fields that fail their check
    are dropped on the way (the file is repaired), and the write replaces the file in the run folder
    itself (never through a link)."""
    run_dir = Path(run_dir)
    with file_lock(run_dir / STATUS_LOCK):
        status = runschema.clean(runschema.STATUS, read_json(run_dir / STATUS, default={}))
        status.update(updates)
        status["updated"] = time.time()
        write_json_inside(run_dir, STATUS, status)
    return status
