"""Background training jobs: a FIFO queue on disk, supervised subprocess workers, cancel, reconcile.

Files (all inside the runs dir, so the queue survives app restarts and reboots)::

    <runs_dir>/.queue.json         {"queue": [job ids, FIFO], "cpu_slots": N?}   (atomic writes)
    <runs_dir>/.queue.lock         flock guarding every queue read-modify-write and every launch
    <runs_dir>/<id>/job.json       the job spec written at submit (slot, GPUs, worker command, cwd,
                                   env) plus a `launch` record (supervisor pid/start time, GPUs)
    <runs_dir>/<id>/status.json    the store contract; this package adds `job`, `worker`, `cancel`,
                                   `released`, `exit_code`, `started`, `ended`

Modules of this package::

    spec.py        job.json: constants, the resource plan, the worker command and environment
    procs.py       process identity (pid + start time + boot id), liveness, process trees, reaping
    queue.py       .queue.json and its lock, CPU/GPU slots, schedule() + reconcile, launching supervisors
    supervisor.py  one job's supervisor process: `python -m newsclf.jobs.supervisor RUN_DIR`
    outcome.py     terminal state and failure reasons (classify_failure, finalize)
    submit.py      submit, resume, cancel
    progress.py    reading: JobInfo, read_progress, list_jobs, job_status, tail_log, follow_log
    (newsclf/devices.py: GPU discovery, shared with the dashboard)

A job id is its run id. A started job runs under a small supervisor in its own session; the
supervisor starts the trainer (`python -m newsclf train --run-dir RUN_DIR`, or torchrun) in its own
process group with output to train.log, enforces a cancel deadline, records a terminal state the
trainer could not write (killed, crashed), kills what is left of the trainer's process tree, and
then calls `schedule()` so the next queued job starts by itself. Any `list_jobs`/`job_status` call
reconciles: a job whose supervisor and trainer are gone (SIGKILL, reboot) is marked failed "worker
died", guarded against PID reuse by the process start time and the boot id.

Slots: one job per GPU (ids from $NEWSCLF_GPUS, else $CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`)
and `cpu_slots` concurrent CPU jobs ($NEWSCLF_CPU_SLOTS, default 1). Queued jobs start in FIFO
order per resource kind. This package never imports torch or streamlit.
"""
from __future__ import annotations

from newsclf.devices import ENV_GPUS, nvidia_smi_gpus, visible_gpus
from newsclf.jobs.outcome import WORKER_DIED, classify_failure
from newsclf.jobs.procs import process_alive, process_identity
from newsclf.jobs.progress import JobInfo, follow_log, job_status, list_jobs, read_progress, tail_log
from newsclf.jobs.queue import QUEUE_FILE, QUEUE_LOCK, resolve_cpu_slots, schedule, set_cpu_slots
from newsclf.jobs.spec import (DEFAULT_CANCEL_TIMEOUT_S, DEFAULT_KILL_GRACE_S, ENV_CPU_SLOTS, ENV_WORKER_CMD,
                               JOB_FILE, PROJECT_ROOT, JobError, build_worker_command)
from newsclf.jobs.submit import cancel, resume, submit

__all__ = [
    "DEFAULT_CANCEL_TIMEOUT_S", "DEFAULT_KILL_GRACE_S", "ENV_CPU_SLOTS", "ENV_GPUS", "ENV_WORKER_CMD", "JOB_FILE",
    "PROJECT_ROOT", "QUEUE_FILE", "QUEUE_LOCK", "WORKER_DIED", "JobError", "JobInfo", "build_worker_command", "cancel",
    "classify_failure", "follow_log", "job_status", "list_jobs", "nvidia_smi_gpus", "process_alive",
    "process_identity", "read_progress", "resolve_cpu_slots", "resume", "schedule", "set_cpu_slots", "submit",
    "tail_log", "visible_gpus",
]
