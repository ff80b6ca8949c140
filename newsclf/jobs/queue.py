"""The queue: `.queue.json` and its lock, slots, scheduling and reconciling, launching supervisors.

    <runs_dir>/.queue.json   {"queue": [job ids, FIFO], "cpu_slots": N?}   (atomic writes)
    <runs_dir>/.queue.lock   flock guarding every queue read-modify-write and every launch

Slots: one job per GPU (newsclf.devices.visible_gpus) and `cpu_slots` concurrent CPU jobs
($NEWSCLF_CPU_SLOTS, default 1). Queued jobs start in FIFO order per resource kind.
"""
from __future__ import annotations

import contextlib
import errno
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
from newsclf.jobs import files, procs
from newsclf.jobs.outcome import WORKER_DIED, finalize, reconcile_direct_runs
from newsclf.jobs.spec import (ENV_CPU_SLOTS, JOB_FILE, MAX_CPU_SLOTS, REPLAYED, WORKER_KEYS, JobError,
                               TrustedJob, UntrustedJobError, job_cwd, job_env, load_trusted_job, positive_int,
                               public_job, read_spec, record_launch, sign_launch, signed, verified_launch,
                               was_launched)

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
        return positive_int(override, "cpu_slots", MAX_CPU_SLOTS)
    candidates = []
    if runs_dir is not None:
        candidates.append(read_queue(resolve_runs_dir(runs_dir)).get("cpu_slots"))
    candidates.append(os.environ.get(ENV_CPU_SLOTS) or None)
    for value in candidates:
        if value is not None:
            with contextlib.suppress(ConfigError):
                return positive_int(value, "cpu_slots", MAX_CPU_SLOTS)
    return 1


def set_cpu_slots(runs_dir: str | os.PathLike | None, slots: int | None) -> None:
    """Store the number of concurrent CPU jobs for every scheduler of this runs dir (None: back to the
    env default); queued jobs start at once if slots were added."""
    root = resolve_runs_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    value = None if slots is None else positive_int(slots, "cpu_slots", MAX_CPU_SLOTS)
    with queue_lock(root):
        queue = read_queue(root)
        queue.pop("cpu_slots", None) if value is None else queue.update(cpu_slots=value)
        write_queue(root, queue)
    schedule(root)


# ---- scheduling and reconciling ---------------------------------------------------------------
def _number(value: Any, default: float = 0.0) -> float:
    """A float from an untrusted JSON value (a crafted file must never break scheduling)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _scan_jobs(root: Path) -> dict[str, tuple[Path, dict[str, Any], dict[str, Any]]]:
    jobs = {}
    if not root.is_dir():
        return jobs
    for path in root.iterdir():
        if store.RUN_ID_RE.match(path.name) and not path.is_symlink() and path.is_dir():
            spec = read_spec(path)
            if spec is not None:
                jobs[path.name] = (path, spec, files.read_status(path))
    return jobs


def _trusted(path: Path) -> TrustedJob | None:
    with contextlib.suppress(JobError):
        return load_trusted_job(path)
    return None


def schedule(runs_dir: str | os.PathLike | None = None, *, cpu_slots: int | None = None) -> list[str]:
    """Reconcile every job (and runs trained outside the queue), then start queued jobs on free slots
    (FIFO per resource kind). Only jobs whose job.json signature verifies are started; one without
    (not submitted by this installation) stays queued, untouched. A read-only runs dir is left
    alone (nothing reconciled or started). Safe to call from any number of processes at once (all
    under the queue lock). Returns the ids started by this call.
    """
    root = resolve_runs_dir(runs_dir)
    if not root.is_dir() or not os.access(root, os.W_OK):
        return []
    reconcile_direct_runs(root)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(queue_lock(root))
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return []  # read-only: listing still works, nothing is written
            raise
        return _schedule_locked(root, cpu_slots)


def _schedule_locked(root: Path, cpu_slots: int | None) -> list[str]:
    queue = read_queue(root)
    jobs = _scan_jobs(root)
    busy_cpu, busy_gpus = _reconcile(root, queue, jobs)
    n_cpu = resolve_cpu_slots(root, cpu_slots)
    free_gpus = [g for g in visible_gpus() if g not in busy_gpus]
    started, blocked = [], set()
    for job_id in list(queue["queue"]):
        path, spec, _ = jobs[job_id]
        if spec.get("slot") in blocked:
            continue
        try:
            plan = load_trusted_job(path).plan
            if was_launched(job_id, spec):  # a signed job rolled back to "queued": never twice
                raise JobError(REPLAYED)
        except UntrustedJobError:
            continue  # not ours (or changed since submit): never launched, left as it is
        except JobError as exc:  # ours, but its config no longer validates, or a replay
            queue["queue"].remove(job_id)
            write_queue(root, queue)
            files.update_status_if(path, ("queued", "unknown"), state="failed", reason=str(exc),
                                   ended=time.time(), released=True)
            continue
        kind = plan["slot"]
        if kind == "cpu":
            if busy_cpu >= n_cpu:
                blocked.add(kind)
                continue
            assigned: list[str] = []
            busy_cpu += 1
        else:
            assigned = _pick_gpus(plan, free_gpus)
            if assigned is None:
                blocked.add(kind)
                continue
            free_gpus = [g for g in free_gpus if g not in assigned]
        queue["queue"].remove(job_id)
        write_queue(root, queue)
        if _launch(path, spec, assigned):
            started.append(job_id)
    write_queue(root, queue)
    return started


def _pick_gpus(plan: dict[str, Any], free: list[str]) -> list[str] | None:
    wanted = plan.get("gpus")
    if wanted:
        return list(wanted) if all(g in free for g in wanted) else None
    count = int(plan.get("gpu_count") or 1)
    return free[:count] if len(free) >= count else None


def _reconcile(root: Path, queue: dict[str, Any], jobs: dict) -> tuple[int, set[str]]:
    """Fix the queue against the statuses, mark dead workers failed; return the slots in use."""
    ids = [i for i in queue["queue"] if i in jobs]
    for job_id in list(ids):
        path, spec, status = jobs[job_id]
        if status["state"] in ("unknown", "damaged") and _trusted(path) and not was_launched(job_id, spec):
            store.write_json_atomic(path / store.STATUS, {"state": "queued", "created": spec.get("submitted"),
                                                          "updated": time.time(), "job": public_job(spec)})
            jobs[job_id] = (path, spec, files.read_status(path))
        elif status["state"] != "queued":
            ids.remove(job_id)
    orphans = [i for i, (_, spec, st) in jobs.items() if st["state"] == "queued" and i not in ids]
    ids += sorted(orphans, key=lambda i: (_number(jobs[i][1].get("submitted")), i))
    queue["queue"] = ids
    busy_cpu, busy_gpus = 0, set()
    for job_id, (path, spec, status) in jobs.items():
        if job_id in ids or not _holds_slot(path, spec, status):
            continue
        if spec.get("slot") == "gpu":
            gpus = (spec.get("launch") or {}).get("gpus")
            busy_gpus.update(g for g in (gpus if isinstance(gpus, list) else []) if isinstance(g, str))
        else:
            busy_cpu += 1
    return busy_cpu, busy_gpus


def _holds_slot(run_dir: Path, spec: dict[str, Any], status: dict[str, Any]) -> bool:
    """True while the job's processes may still use its slot; marks a dead job failed.

    Only a job this installation signed, with a launch record it signed for the current attempt,
    holds a slot; its supervisor and worker count as alive only through identities with a start
    time (procs.process_alive) that were recorded by our own code (signed). Anything else in a
    shared runs dir (a stranger's folder claiming pid 1, a replayed job) holds nothing."""
    state = status["state"]
    if state in store.TERMINAL_STATES and status.get("released"):
        return False
    if _trusted(run_dir) is None:
        return False
    launch = verified_launch(run_dir.name, spec)
    if launch is None:
        return False
    worker = status.get("worker") if isinstance(status.get("worker"), dict) else None
    worker = worker if worker and _worker_signed(run_dir, worker, status) else None
    if not (procs.on_this_machine(launch.get("supervisor")) and procs.on_this_machine(worker)):
        return False  # launched by another machine sharing the runs dir: not our slot, not ours to finalize
    supervisor_alive = procs.process_alive(launch.get("supervisor"))
    if state in store.TERMINAL_STATES:
        return supervisor_alive
    if supervisor_alive:
        return True
    if procs.process_alive(worker):  # supervisor gone, trainer still going: let it finish
        cancel = status.get("cancel") if isinstance(status.get("cancel"), dict) else {}
        if cancel and time.time() >= _number(cancel.get("deadline")):
            procs.signal_tree(worker.get("pgid"), signal.SIGKILL, procs.descendants(worker["pid"]))
        return True
    finalize(run_dir, returncode=None, log_offset=_number((worker or {}).get("log_offset")), launched=True)
    return False


def _worker_signed(run_dir: Path, worker: dict[str, Any], status: dict[str, Any]) -> bool:
    """Only a worker record our own supervisor wrote (signed, full identity) may count as alive or be killed."""
    record = {k: worker.get(k) for k in WORKER_KEYS}
    return (isinstance(worker.get("start"), int) and bool(worker.get("boot"))
            and signed(run_dir.name, "worker", record, status.get("worker_sig")))


def _launch(run_dir: Path, spec: dict[str, Any], gpus: list[str]) -> bool:
    """Start the supervisor of one verified job (caller holds the queue lock); False when it could not.
    The launch is recorded (ledger entry, then a signed launch record) before anything starts, so this
    attempt can never be launched again. The supervisor gets its GPUs on its command line and
    verifies the job again before it starts the trainer."""
    now = time.time()
    try:
        record_launch(run_dir.name, spec)
    except JobError as exc:
        files.update_status_if(run_dir, ("queued", "unknown"), state="failed", reason=str(exc),
                               ended=now, released=True)
        return False
    spec["launch"] = {"started": now, "gpus": gpus}
    sign_launch(spec)
    store.write_json_inside(run_dir, JOB_FILE, spec)
    files.update_status(run_dir, state="running", started=now, phase="starting", released=None,
                        job={**public_job(spec), "gpus": gpus or spec.get("gpus")})
    cmd = [sys.executable, "-m", "newsclf.jobs.supervisor", str(run_dir), "--gpus", ",".join(gpus)]
    try:
        with files.open_append(run_dir, store.LOG) as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=job_cwd(), env=job_env(), start_new_session=True)
    except OSError as exc:
        files.update_status(run_dir, state="failed", reason=f"{WORKER_DIED} (could not start: {exc})",
                            ended=time.time(), released=True)
        return False
    procs.register_child(proc)
    spec["launch"]["supervisor"] = procs.process_identity(proc.pid)
    sign_launch(spec)
    store.write_json_inside(run_dir, JOB_FILE, spec)
    files.update_status(run_dir, supervisor=spec["launch"]["supervisor"])
    return True
