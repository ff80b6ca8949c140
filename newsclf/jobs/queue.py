"""The queue: `.queue.json` and its lock, slots, scheduling and reconciling, launching supervisors.

    <runs_dir>/.queue.json   {"queue": [job ids, FIFO], "cpu_slots": N?}   (atomic writes)
    <runs_dir>/.queue.lock   flock guarding every queue read-modify-write and every launch

Slots: one job per GPU (newsclf.devices.visible_gpus) and `cpu_slots` concurrent CPU jobs
($NEWSCLF_CPU_SLOTS, default 1). Queued jobs start in FIFO order per resource kind.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from newsclf import store
from newsclf.config import ConfigError, resolve_runs_dir
from newsclf.devices import visible_gpus
from newsclf.jobs import procs
from newsclf.jobs.outcome import WORKER_DIED, finalize
from newsclf.jobs.spec import ENV_CPU_SLOTS, JOB_FILE, job_cwd, job_env, positive_int, public_job, read_spec

QUEUE_FILE = ".queue.json"
QUEUE_LOCK = ".queue.lock"


# ---- queue file -------------------------------------------------------------------------------
def read_queue(runs_dir: Path) -> dict[str, Any]:
    data = store.read_json(Path(runs_dir) / QUEUE_FILE, default={})
    if not isinstance(data, dict):
        data = {}
    ids = data.get("queue") if isinstance(data.get("queue"), list) else []
    seen: list[str] = []
    for job_id in ids:
        if isinstance(job_id, str) and store.RUN_ID_RE.match(job_id) and job_id not in seen:
            seen.append(job_id)
    data["queue"] = seen
    return data


def write_queue(runs_dir: Path, data: dict[str, Any]) -> None:
    store.write_json_atomic(Path(runs_dir) / QUEUE_FILE, data)


def queue_lock(runs_dir: Path):
    return store.file_lock(Path(runs_dir) / QUEUE_LOCK)


# ---- slots ------------------------------------------------------------------------------------
def resolve_cpu_slots(runs_dir: str | os.PathLike | None = None, override: int | None = None) -> int:
    """Concurrent CPU jobs: `override` > the value stored in the queue (set_cpu_slots, submit's
    cpu_slots) > $NEWSCLF_CPU_SLOTS > 1. A bad stored or env value falls back (never breaks scheduling)."""
    if override is not None:
        return positive_int(override, "cpu_slots")
    candidates = []
    if runs_dir is not None:
        candidates.append(read_queue(resolve_runs_dir(runs_dir)).get("cpu_slots"))
    candidates.append(os.environ.get(ENV_CPU_SLOTS) or None)
    for value in candidates:
        if value is not None:
            with contextlib.suppress(ConfigError):
                return positive_int(value, "cpu_slots")
    return 1


def set_cpu_slots(runs_dir: str | os.PathLike | None, slots: int | None) -> None:
    """Store the number of concurrent CPU jobs for every scheduler of this runs dir (None: back to the
    env default); queued jobs start at once if slots were added."""
    root = resolve_runs_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    value = None if slots is None else positive_int(slots, "cpu_slots")
    with queue_lock(root):
        queue = read_queue(root)
        queue.pop("cpu_slots", None) if value is None else queue.update(cpu_slots=value)
        write_queue(root, queue)
    schedule(root)


# ---- scheduling and reconciling ---------------------------------------------------------------
def _scan_jobs(root: Path) -> dict[str, tuple[Path, dict[str, Any], dict[str, Any]]]:
    jobs = {}
    if not root.is_dir():
        return jobs
    for path in root.iterdir():
        if path.is_dir() and store.RUN_ID_RE.match(path.name):
            spec = read_spec(path)
            if spec is not None:
                jobs[path.name] = (path, spec, store.read_status(path))
    return jobs


def schedule(runs_dir: str | os.PathLike | None = None, *, cpu_slots: int | None = None) -> list[str]:
    """Reconcile every job, then start queued jobs on free slots (FIFO per resource kind).

    Safe to call from any number of processes at once (all under the queue lock). Returns the ids
    started by this call.
    """
    root = resolve_runs_dir(runs_dir)
    if not root.is_dir():
        return []
    with queue_lock(root):
        queue = read_queue(root)
        jobs = _scan_jobs(root)
        busy_cpu, busy_gpus = _reconcile(root, queue, jobs)
        n_cpu = resolve_cpu_slots(root, cpu_slots)
        free_gpus = [g for g in visible_gpus() if g not in busy_gpus]
        started, blocked = [], set()
        for job_id in list(queue["queue"]):
            path, spec, _ = jobs[job_id]
            kind = spec.get("slot", "cpu")
            if kind in blocked:
                continue
            if kind == "cpu":
                if busy_cpu >= n_cpu:
                    blocked.add(kind)
                    continue
                assigned: list[str] = []
                busy_cpu += 1
            else:
                assigned = _pick_gpus(spec, free_gpus)
                if assigned is None:
                    blocked.add(kind)
                    continue
                free_gpus = [g for g in free_gpus if g not in assigned]
            queue["queue"].remove(job_id)
            write_queue(root, queue)
            _launch(path, spec, assigned)
            started.append(job_id)
        write_queue(root, queue)
    return started


def _pick_gpus(spec: dict[str, Any], free: list[str]) -> list[str] | None:
    wanted = spec.get("gpus")
    if wanted:
        return list(wanted) if all(g in free for g in wanted) else None
    count = int(spec.get("gpu_count") or 1)
    return free[:count] if len(free) >= count else None


def _reconcile(root: Path, queue: dict[str, Any], jobs: dict) -> tuple[int, set[str]]:
    """Fix the queue against the statuses, mark dead workers failed; return the slots in use."""
    ids = [i for i in queue["queue"] if i in jobs]
    for job_id in list(ids):
        path, spec, status = jobs[job_id]
        if status["state"] == "unknown" and not spec.get("launch"):  # corrupted status of a queued job
            store.write_json_atomic(path / store.STATUS, {"state": "queued", "created": spec.get("submitted"),
                                                          "updated": time.time(), "job": public_job(spec)})
            jobs[job_id] = (path, spec, store.read_status(path))
        elif status["state"] != "queued":
            ids.remove(job_id)
    orphans = [i for i, (_, spec, st) in jobs.items() if st["state"] == "queued" and i not in ids]
    ids += sorted(orphans, key=lambda i: (jobs[i][1].get("submitted") or 0, i))
    queue["queue"] = ids
    busy_cpu, busy_gpus = 0, set()
    for job_id, (path, spec, status) in jobs.items():
        if job_id in ids or not _holds_slot(path, spec, status):
            continue
        if spec.get("slot") == "gpu":
            busy_gpus.update((spec.get("launch") or {}).get("gpus") or [])
        else:
            busy_cpu += 1
    return busy_cpu, busy_gpus


def _holds_slot(run_dir: Path, spec: dict[str, Any], status: dict[str, Any]) -> bool:
    """True while the job's processes may still use its slot; marks a dead job failed."""
    state = status["state"]
    if state in store.TERMINAL_STATES and status.get("released"):
        return False
    launch = spec.get("launch") or {}
    supervisor_alive = procs.process_alive(launch.get("supervisor"))
    if state in store.TERMINAL_STATES:
        return supervisor_alive
    if supervisor_alive:
        return True
    worker = status.get("worker")
    if procs.process_alive(worker):  # supervisor gone, trainer still going: let it finish
        cancel = status.get("cancel") or {}
        if cancel and time.time() >= float(cancel.get("deadline", 0)):
            procs.signal_tree(worker.get("pgid"), signal.SIGKILL, procs.descendants(worker["pid"]))
        return True
    finalize(run_dir, returncode=None, log_offset=(worker or {}).get("log_offset", 0), launched=bool(launch))
    return False



def _launch(run_dir: Path, spec: dict[str, Any], gpus: list[str]) -> None:
    """Start the supervisor of one job (caller holds the queue lock)."""
    now = time.time()
    spec["launch"] = {"started": now, "gpus": gpus}  # before the start: the supervisor reads its GPUs here
    store.write_json_atomic(run_dir / JOB_FILE, spec)
    store.update_status(run_dir, state="running", started=now, phase="starting", released=None,
                        job={**public_job(spec), "gpus": gpus or spec.get("gpus")})
    cmd = [sys.executable, "-m", "newsclf.jobs.supervisor", str(run_dir)]
    try:
        with open(run_dir / store.LOG, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=job_cwd(spec, run_dir), env=job_env(spec), start_new_session=True)
    except OSError as exc:
        store.update_status(run_dir, state="failed", reason=f"{WORKER_DIED} (could not start: {exc})",
                            ended=time.time(), released=True)
        return
    procs.register_child(proc)
    spec["launch"]["supervisor"] = procs.process_identity(proc.pid)
    store.write_json_atomic(run_dir / JOB_FILE, spec)
    store.update_status(run_dir, supervisor=spec["launch"]["supervisor"])
