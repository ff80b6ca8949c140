"""Background training jobs: a FIFO queue on disk, supervised subprocess workers, cancel, reconcile.

Files (all inside the runs dir, so the queue survives app restarts and reboots)::

    <runs_dir>/.queue.json         {"queue": [job ids, FIFO], "cpu_slots": N?}   (atomic writes)
    <runs_dir>/.queue.lock         flock guarding every queue read-modify-write and every launch
    <runs_dir>/<id>/job.json       the job spec written at submit (slot, GPUs, nproc, resume) with an
                                   HMAC `signature`, plus a `launch` record (supervisor identity, GPUs);
                                   never a command, environment or working directory
    <runs_dir>/<id>/status.json    the store contract; this package adds `job`, `worker` (+ `worker_sig`),
                                   `cancel`, `released`, `exit_code`, `started`, `ended`
    ~/.config/newsclf/job.key      the signing key, outside every runs dir ($NEWSCLF_JOB_KEY_FILE)

Modules of this package::

    spec.py        job.json: constants, the resource plan, verification, the worker command
    signing.py     the key, HMAC signatures, the launch lifecycle (signed launch record + ledger)
    files.py       reads and writes of run-dir files that never follow a symlink
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
died", guarded against PID reuse by the process start time and the boot id; a run trained
outside the queue whose recorded `trainer` is gone is marked failed "trainer died"
(reconcile_direct_runs, also called by `runs list`).

Trust: a runs dir is untrusted (often a shared drive). Only jobs whose job.json signature verifies
with this installation's key are launched; their command is rebuilt from the validated config by
fixed code, with this process's environment and working directory (see spec.py). A queued job
without a valid signature is left alone and reported ("not submitted by this installation ...").

Slots: one job per GPU (ids from $NEWSCLF_GPUS, else $CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`)
and `cpu_slots` concurrent CPU jobs ($NEWSCLF_CPU_SLOTS, default 1). Queued jobs start in FIFO
order per resource kind. This package never imports torch or streamlit.
"""
from __future__ import annotations

from newsclf.devices import ENV_GPUS, nvidia_smi_gpus, visible_gpus
from newsclf.jobs.outcome import TRAINER_DIED, WORKER_DIED, classify_failure, reconcile_direct_runs
from newsclf.jobs.procs import process_alive, process_identity
from newsclf.jobs.progress import JobInfo, follow_log, job_status, list_jobs, read_progress, tail_log
from newsclf.jobs.queue import QUEUE_FILE, QUEUE_LOCK, resolve_cpu_slots, schedule, set_cpu_slots
from newsclf.jobs.spec import (DEFAULT_CANCEL_TIMEOUT_S, DEFAULT_KILL_GRACE_S, ENV_CPU_SLOTS, ENV_JOB_KEY_FILE,
                               ENV_WORKER_CMD, JOB_FILE, MAX_CPU_SLOTS, MAX_NPROC, PROJECT_ROOT, UNTRUSTED, JobError,
                               UntrustedJobError, build_worker_command)
from newsclf.jobs.submit import cancel, resume, submit

__all__ = [
    "DEFAULT_CANCEL_TIMEOUT_S", "DEFAULT_KILL_GRACE_S", "ENV_CPU_SLOTS", "ENV_GPUS", "ENV_JOB_KEY_FILE",
    "ENV_WORKER_CMD", "JOB_FILE", "MAX_CPU_SLOTS", "MAX_NPROC", "PROJECT_ROOT", "QUEUE_FILE", "QUEUE_LOCK",
    "TRAINER_DIED", "UNTRUSTED", "WORKER_DIED", "JobError", "JobInfo", "UntrustedJobError", "build_worker_command",
    "cancel", "classify_failure", "follow_log", "job_status", "list_jobs", "nvidia_smi_gpus", "process_alive",
    "process_identity", "read_progress", "reconcile_direct_runs", "resolve_cpu_slots", "resume", "schedule",
    "set_cpu_slots", "submit", "tail_log", "visible_gpus",
]
