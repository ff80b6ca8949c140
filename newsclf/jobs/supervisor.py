"""The supervisor of one job: its own process, `python -m newsclf.jobs.supervisor RUN_DIR`.

Started by the scheduler (newsclf.jobs.queue) in its own session, it starts the trainer
(`python -m newsclf train --run-dir RUN_DIR`, or torchrun) in its own process group with output
to train.log, enforces a cancel deadline, records a terminal state the trainer could not write
(killed, crashed), kills what is left of the trainer's process tree, and then calls schedule()
so the next queued job starts by itself. Nothing imports this module; it only runs as __main__.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from newsclf import store
from newsclf.jobs import procs
from newsclf.jobs.outcome import OWN_PREFIX, finalize
from newsclf.jobs.queue import schedule
from newsclf.jobs.spec import (DEFAULT_CANCEL_TIMEOUT_S, DEFAULT_KILL_GRACE_S, POLL_S, build_worker_command, job_cwd,
                               job_env, read_spec)


def supervise(run_dir: str | os.PathLike) -> int:
    """Run one job's trainer to the end and record the outcome; then start the next queued job."""
    run_dir = Path(run_dir).resolve()
    spec = read_spec(run_dir) or {}
    procs.become_subreaper()
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if store.stop_requested(run_dir):
            finalize(run_dir, returncode=None, launched=False)
            return 0
        rc = _run_worker(run_dir, spec, received)
        return 0 if rc == 0 else 1
    except Exception:  # e.g. the worker command does not exist: record it, never leave "running"
        traceback.print_exc()
        sys.stderr.flush()
        procs.kill_everything(0, signal.SIGKILL)
        finalize(run_dir, returncode=None, log_offset=_log_size(run_dir) - 20_000)
        return 1
    finally:
        with contextlib.suppress(Exception):
            schedule(run_dir.parent)


def _run_worker(run_dir: Path, spec: dict[str, Any], received: list[str]) -> int:
    gpus = (spec.get("launch") or {}).get("gpus") or []
    env = job_env(spec)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # "" hides every GPU from a CPU job
    env["NEWSCLF_RUNS_DIR"] = str(run_dir.parent)
    cmd = build_worker_command(spec, run_dir)
    with open(run_dir / store.LOG, "ab") as log:
        offset = log.seek(0, os.SEEK_END)
        log.write(f"{OWN_PREFIX}{time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=job_cwd(spec, run_dir), env=env, process_group=0)
    worker = {**procs.process_identity(proc.pid), "pgid": proc.pid, "log_offset": offset}
    store.update_status(run_dir, worker=worker, phase="training")
    killed = _wait_worker(proc, run_dir, received)
    procs.kill_everything(proc.pid, signal.SIGKILL)  # leftovers: DataLoader workers, torchrun ranks
    rc = proc.wait()
    procs.reap_adopted(keep=-1)
    with open(run_dir / store.LOG, "ab") as log:
        log.write(f"{OWN_PREFIX}worker exited with code {rc}\n".encode())
    finalize(run_dir, returncode=rc, log_offset=offset, killed_for_cancel=killed,
              terminated_by=received[0] if received and not killed else None)
    return rc


def _wait_worker(proc: subprocess.Popen, run_dir: Path, received: list[str]) -> bool:
    """Poll until the trainer exits, enforcing a cancel deadline; True if it had to be killed for it."""
    term_at: float | None = None
    killed = False
    while not procs.exited(proc.pid):
        now = time.time()
        if received and term_at is None:
            procs.kill_everything(proc.pid, signal.SIGTERM)
            term_at = now
        elif term_at is None and store.stop_requested(run_dir):
            cancel = store.read_status(run_dir).get("cancel") or {}
            deadline = cancel.get("deadline") or _stop_time(run_dir) + DEFAULT_CANCEL_TIMEOUT_S
            if now >= float(deadline):
                procs.kill_everything(proc.pid, signal.SIGTERM)
                term_at, killed = now, True
        if term_at is not None:
            grace = (store.read_status(run_dir).get("cancel") or {}).get("grace", DEFAULT_KILL_GRACE_S)
            if now >= term_at + float(grace):
                procs.kill_everything(proc.pid, signal.SIGKILL)
        procs.reap_adopted(keep=proc.pid)
        time.sleep(POLL_S)
    return killed


def _log_size(run_dir: Path) -> int:
    try:
        return (run_dir / store.LOG).stat().st_size
    except OSError:
        return 0


def _stop_time(run_dir: Path) -> float:
    try:
        return (run_dir / store.STOP).stat().st_mtime
    except OSError:
        return time.time()



def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m newsclf.jobs.supervisor RUN_DIR", file=sys.stderr)
        return 2
    return supervise(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
