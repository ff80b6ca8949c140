"""The supervisor of one job: its own process, `python -m newsclf.jobs.supervisor RUN_DIR [--gpus IDS]`.

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
from typing import Any, Sequence

from newsclf import store
from newsclf.devices import split_ids
from newsclf.jobs import files, procs
from newsclf.jobs.outcome import OWN_PREFIX, finalize
from newsclf.jobs.queue import schedule
from newsclf.jobs.spec import (DEFAULT_CANCEL_TIMEOUT_S, DEFAULT_KILL_GRACE_S, POLL_S, WORKER_KEYS, JobError,
                               TrustedJob, build_worker_command, job_cwd, job_env, load_trusted_job, sign)


def supervise(run_dir: str | os.PathLike, gpus: Sequence[str] = ()) -> int:
    """Run one job's trainer on `gpus` to the end and record the outcome; then start the next queued job.

    The job is verified again here (signature, config, plan): nothing of job.json is trusted
    between the scheduler's check and this start."""
    run_dir = Path(run_dir).resolve()
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
        try:
            job = load_trusted_job(run_dir)
        except JobError as exc:
            files.update_status_if(run_dir, ("queued", "running", "unknown"), state="failed", reason=str(exc),
                                   ended=time.time(), released=True, exit_code=None, phase=None)
            return 1
        rc = _run_worker(run_dir, job, list(gpus), received)
        return 0 if rc == 0 else 1
    except Exception:  # e.g. the worker command does not exist: record it, never leave "running"
        traceback.print_exc()
        sys.stderr.flush()
        procs.kill_everything(0, signal.SIGKILL)
        finalize(run_dir, returncode=None, log_offset=files.log_size(run_dir) - 20_000)
        return 1
    finally:
        with contextlib.suppress(Exception):
            schedule(run_dir.parent)


def _run_worker(run_dir: Path, job: TrustedJob, gpus: list[str], received: list[str]) -> int:
    env = job_env()
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # "" hides every GPU from a CPU job
    env["NEWSCLF_RUNS_DIR"] = str(run_dir.parent)
    cmd = build_worker_command(job.plan, run_dir, data_home=job.config.data_home)
    with files.open_append(run_dir, store.LOG) as log:
        offset = log.seek(0, os.SEEK_END)
        log.write(f"{OWN_PREFIX}{time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=job_cwd(), env=env, process_group=0)
    worker = {**procs.process_identity(proc.pid), "pgid": proc.pid, "log_offset": offset}
    files.update_status(run_dir, worker=worker, phase="training",
                        worker_sig=sign(run_dir.name, "worker", {k: worker[k] for k in WORKER_KEYS}))
    killed = _wait_worker(proc, run_dir, received)
    procs.kill_everything(proc.pid, signal.SIGKILL)  # leftovers: DataLoader workers, torchrun ranks
    rc = proc.wait()
    procs.reap_adopted(keep=-1)
    with files.open_append(run_dir, store.LOG) as log:
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
            cancel = files.read_status(run_dir).get("cancel") or {}
            deadline = _number(cancel.get("deadline"), _stop_time(run_dir) + DEFAULT_CANCEL_TIMEOUT_S)
            if now >= deadline:
                procs.kill_everything(proc.pid, signal.SIGTERM)
                term_at, killed = now, True
        if term_at is not None:
            grace = _number((files.read_status(run_dir).get("cancel") or {}).get("grace"), DEFAULT_KILL_GRACE_S)
            if now >= term_at + grace:
                procs.kill_everything(proc.pid, signal.SIGKILL)
        procs.reap_adopted(keep=proc.pid)
        time.sleep(POLL_S)
    return killed


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    return float(value) if ok else default


def _stop_time(run_dir: Path) -> float:
    try:
        return (run_dir / store.STOP).stat().st_mtime
    except OSError:
        return time.time()



def main(argv: list[str]) -> int:
    args = list(argv)
    gpus: list[str] = []
    if len(args) == 3 and args[1] == "--gpus":
        gpus = split_ids(args.pop())
        args.pop()
    if len(args) != 1 or not all(g.isdigit() for g in gpus):
        print("usage: python -m newsclf.jobs.supervisor RUN_DIR [--gpus 0,1]", file=sys.stderr)
        return 2
    return supervise(args[0], gpus)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
