"""How a job ended: the terminal state the trainer could not write, and a one-line failure reason.

classify_failure() turns an exit code and the trainer's log into "out of memory", "bad data",
"worker died (killed by SIGKILL)" or the last exception line; finalize() records the outcome in
status.json (idempotent; a state the trainer wrote is kept, only its gaps are filled). reconcile_direct_runs()
does the same for runs trained outside the queue (`python -m newsclf train`) whose trainer died.
"""
from __future__ import annotations

import math
import os
import re
import signal
import stat
import time
from pathlib import Path
from typing import Any

from newsclf import store
from newsclf.config import resolve_runs_dir
from newsclf.jobs import files
from newsclf.jobs.procs import on_this_machine as procs_on_this_machine, process_alive

WORKER_DIED = "worker died"
TRAINER_DIED = "trainer died (killed or crashed; e.g. out of memory)"
FOREIGN_SILENCE_S = 3600.0  # a run of another machine sharing the runs dir is judged dead after this silence
OWN_PREFIX = "[newsclf.jobs] "  # the supervisor's own lines in train.log


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
        with store.open_inside(run_dir, store.LOG) as fh:  # never through a symlink
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
    status = files.read_status(run_dir)
    if status["state"] in store.TERMINAL_STATES:  # the trainer wrote it: keep it, fill gaps
        if status["state"] == "failed" and not status.get("reason"):
            log = log_since(run_dir, log_offset, own_lines=False)
            extra.update(reason=classify_failure(returncode, log), error=status.get("error") or error_text(log))
        if not status.get("ended"):
            extra["ended"] = now
        return files.update_status_if(run_dir, store.TERMINAL_STATES, **extra) or status
    log = log_since(run_dir, log_offset, own_lines=False)
    has_results = isinstance(files.read_json(run_dir, store.RESULTS), dict)
    if status["state"] in ("unknown", "damaged") and returncode is None and has_results:
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
    return files.update_status_if(run_dir, ("queued", "running", "unknown"), ended=now, **updates, **extra) \
        or files.read_status(run_dir)



# ---- runs trained outside the queue ------------------------------------------------------------------
TRAINER_KEYS = ("pid", "start", "boot", "host")


def sign_trainer(run_id: str, trainer: dict[str, Any] | None) -> str | None:
    """A direct trainer's signature of its own identity record (None when no key can be made or read)."""
    from newsclf.jobs.spec import JobError, sign

    if not trainer:
        return None
    try:
        return sign(run_id, "trainer", {k: trainer.get(k) for k in TRAINER_KEYS})
    except (JobError, OSError):
        return None


def trainer_signed(run_id: str, status: dict[str, Any]) -> bool:
    """Is status.json's `trainer` record one this installation's trainer signed (with a start time)?"""
    from newsclf.jobs.spec import signed

    trainer = _identity(status.get("trainer"))
    return trainer is not None and isinstance(trainer.get("start"), int) and \
        signed(run_id, "trainer", {k: trainer.get(k) for k in TRAINER_KEYS}, status.get("trainer_sig"))


def _identity(value: Any) -> dict[str, Any] | None:
    ok = isinstance(value, dict) and isinstance(value.get("pid"), int) and not isinstance(value.get("pid"), bool)
    return value if ok and value["pid"] > 0 else None


def _silent_for(run_dir: Path, status: dict[str, Any]) -> float:
    """Seconds since the trainer last showed life: status.json's `updated`, or the newest change of
    status.json, metrics.jsonl (evaluation progress goes there) or train.log, whichever is latest."""
    times = []
    updated = status.get("updated")
    if not isinstance(updated, bool) and isinstance(updated, (int, float)) and math.isfinite(updated):
        times.append(float(updated))
    for name in (store.STATUS, store.METRICS, store.LOG):
        try:
            st = os.lstat(run_dir / name)  # never follows a link
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            times.append(st.st_mtime)
    return max(0.0, time.time() - max(times)) if times else 0.0


def reconcile_direct_runs(runs_dir: str | os.PathLike | None = None) -> list[str]:
    """Mark failed (reason TRAINER_DIED) every run without a job.json whose status.json says running
    and records a `trainer` identity {pid, start, boot, host} of a process that is gone (start time and
    boot id guard against pid reuse and reboots) and was signed by this installation's trainer
    (`trainer_sig`). A trainer of another machine sharing the runs dir, or an unsigned record (a
    stranger's folder claiming a live pid proves nothing), is not looked up here: its run is marked
    only after FOREIGN_SILENCE_S in which no file of the run changed.
    Returns the ids it marked; a read-only runs dir or run dir is skipped silently. Called by
    schedule(), so list_jobs/job_status and `runs list` see it."""
    root = resolve_runs_dir(runs_dir)
    marked: list[str] = []
    try:
        entries = sorted(root.iterdir()) if root.is_dir() else []
    except OSError:
        return marked
    for path in entries:
        if not store.RUN_ID_RE.match(path.name) or path.is_symlink() or not path.is_dir():
            continue
        if os.path.lexists(path / "job.json"):  # jobs are reconciled through their supervisor/worker
            continue
        status = files.read_status(path)
        trainer = _identity(status.get("trainer"))
        if status["state"] != "running" or trainer is None:
            continue
        silent = _silent_for(path, status)
        if procs_on_this_machine(trainer) and trainer_signed(path.name, status):
            if process_alive(trainer):
                continue
            error = None
        elif silent > FOREIGN_SILENCE_S:  # another machine's run, or an unsigned record: only a long silence counts
            who = str(trainer.get("host") or "an unsigned trainer")[:64]
            error = f"no sign of life from {who} for {silent / 3600:.1f} h (no file of the run changed)"
        else:
            continue
        log = log_since(path, 0, limit=40_000, own_lines=False)
        try:
            details = {"error": error} if error else {"error": error_text(log)} if log.strip() else {}
            done = files.update_status_if(path, ("running",), check=lambda st, t=trainer: st.get("trainer") == t,
                                          reason=TRAINER_DIED, state="failed", ended=time.time(), **details)
        except OSError:  # read-only run dir: report nothing, change nothing
            continue
        if done:
            marked.append(path.name)
    return marked
