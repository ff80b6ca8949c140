"""How a job ended: the terminal state the trainer could not write, and a one-line failure reason.

classify_failure() turns an exit code and the trainer's log into "out of memory", "bad data",
"worker died (killed by SIGKILL)" or the last exception line; finalize() records the outcome in
status.json (idempotent; a state the trainer wrote is kept, only its gaps are filled).
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Sequence

from newsclf import store

WORKER_DIED = "worker died"
OWN_PREFIX = "[newsclf.jobs] "  # the supervisor's own lines in train.log


def update_status_if(run_dir: Path, allowed: Sequence[str], **updates: Any) -> dict[str, Any] | None:
    """Like store.update_status, but only when the current state is in `allowed` (checked under the lock)."""
    with store.file_lock(Path(run_dir) / store.STATUS_LOCK):
        status = store.read_json(Path(run_dir) / store.STATUS, default=None)
        status = status if isinstance(status, dict) else {}
        state = status.get("state") if status.get("state") in store.STATES else "unknown"
        if state not in allowed:
            return None
        status.update(updates)
        status["updated"] = time.time()
        store.write_json_atomic(Path(run_dir) / store.STATUS, status)
        return status


_OOM_RE = re.compile(r"CUDA out of memory|OutOfMemoryError|\bMemoryError\b|CUBLAS_STATUS_ALLOC_FAILED")
_DATA_RE = re.compile(r"\bDataError\b")
_SIGNAL_RE = re.compile(r"Signal (\d+) \(SIG\w+\) received|exitcode\s*:\s*-(\d+)")
_EXC_RE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Interrupt|Exit)\b(?::.*)?$")
_EXC_SKIP = ("ChildFailedError", "SignalException")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify_failure(returncode: int | None, log_text: str) -> str:
    """A short reason: "out of memory", "bad data", "worker died (...)", or the last exception line."""
    if _OOM_RE.search(log_text):
        return "out of memory"
    if _DATA_RE.search(log_text):
        return "bad data"
    if returncode is not None and returncode < 0:
        return f"{WORKER_DIED} (killed by {_signal_name(-returncode)})"
    match = None
    for match in _SIGNAL_RE.finditer(log_text):
        pass
    if match:
        return f"{WORKER_DIED} (killed by {_signal_name(int(match.group(1) or match.group(2)))})"
    for line in reversed([ln.strip() for ln in log_text.splitlines()]):
        if line.startswith("error: "):  # a user error printed by the CLI (exit code 2)
            return line[len("error: "):][:300]
        if _EXC_RE.match(line) and not any(s in line for s in _EXC_SKIP):
            return line[:300]
    if returncode is None:
        return f"{WORKER_DIED} (process gone: killed, crashed or machine restarted)"
    return f"{WORKER_DIED} (exit code {returncode})"


def log_since(run_dir: Path, offset: int, limit: int = 256_000, own_lines: bool = True) -> str:
    try:
        with open(Path(run_dir) / store.LOG, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(int(offset or 0), size - limit, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if own_lines:
        return text
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith(OWN_PREFIX))


def error_text(log_text: str, limit: int = 20_000) -> str:
    start = log_text.rfind("Traceback (most recent call last):")
    text = log_text[start:] if start >= 0 else "\n".join(log_text.splitlines()[-40:])
    return text[-limit:]


def finalize(run_dir: Path, *, returncode: int | None, log_offset: int = 0, launched: bool = True,
              killed_for_cancel: bool = False, terminated_by: str | None = None) -> dict[str, Any]:
    """Record how a job ended when its trainer could not; mark the slot released. Idempotent."""
    now = time.time()
    extra: dict[str, Any] = {"released": True, "exit_code": returncode, "phase": None}
    status = store.read_status(run_dir)
    if status["state"] in store.TERMINAL_STATES:  # the trainer wrote it: keep it, fill gaps
        if status["state"] == "failed" and not status.get("reason"):
            log = log_since(run_dir, log_offset, own_lines=False)
            extra.update(reason=classify_failure(returncode, log), error=status.get("error") or error_text(log))
        if not status.get("ended"):
            extra["ended"] = now
        return update_status_if(run_dir, store.TERMINAL_STATES, **extra) or status
    log = log_since(run_dir, log_offset, own_lines=False)
    has_results = isinstance(store.read_json(run_dir / store.RESULTS), dict)
    if status["state"] == "unknown" and returncode is None and has_results:
        updates = dict(state="finished", reason="status.json was unreadable; restored from results.json")
    elif store.stop_requested(run_dir) and (returncode in (0, None) or killed_for_cancel):
        reason = "cancelled" + (" (killed after the stop timeout)" if killed_for_cancel else "")
        updates = dict(state="cancelled", reason=reason)
    elif returncode == 0 and has_results:
        updates = dict(state="finished")
    elif returncode == 0:
        updates = dict(state="failed", reason=f"{WORKER_DIED} (exited without a final status)", error=error_text(log))
    elif not launched:
        updates = dict(state="failed", reason=f"{WORKER_DIED} (never started)")
    elif terminated_by:
        updates = dict(state="failed", reason=f"worker killed (supervisor received {terminated_by})",
                       error=error_text(log))
    else:
        updates = dict(state="failed", reason=classify_failure(returncode, log), error=error_text(log))
    return update_status_if(run_dir, ("queued", "running", "unknown"), ended=now, **updates, **extra) \
        or store.read_status(run_dir)

