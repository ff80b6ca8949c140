"""Changing jobs: submit (validate, sign, create the run dir, enqueue), resume (requeue from last/), cancel."""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

from newsclf import store
from newsclf.commands.args import parse_train_args
from newsclf.config import ConfigError, RunConfig, resolve_data_home, resolve_runs_dir
from newsclf.prepare import preflight, run_name
from newsclf.jobs import files
from newsclf.jobs.progress import JobInfo, job_status
from newsclf.jobs.queue import queue_lock, read_queue, schedule, write_queue
from newsclf.jobs.spec import (DEFAULT_CANCEL_TIMEOUT_S, DEFAULT_KILL_GRACE_S, ENV_JOB_KEY_FILE, JOB_FILE,
                               MAX_CPU_SLOTS, POLL_S, UNTRUSTED, JobError, UntrustedJobError, ensure_key, key_path,
                               load_trusted_job,
                               plan_resources, positive_int, public_job, sign_job, worker_cmd_prefix)

MAX_CANCEL_TIMEOUT_S = 7 * 24 * 3600.0


def _as_config(config: RunConfig | dict[str, Any] | Sequence[str]) -> RunConfig:
    if isinstance(config, RunConfig):
        cfg = config.resolved()
    elif isinstance(config, dict):
        cfg = RunConfig.from_dict(config).resolved()
    else:
        cfg = parse_train_args(list(config))
    # The job may start later from another process and cwd: pin local paths to absolute ones now.
    cfg.data_home = str(resolve_data_home(cfg.data_home or None))
    if cfg.glove:
        cfg.glove = str(Path(cfg.glove).expanduser().resolve())
    if cfg.pretrained and Path(cfg.pretrained).expanduser().is_dir():
        cfg.pretrained = str(Path(cfg.pretrained).expanduser().resolve())
    return cfg


def submit(config: RunConfig | dict[str, Any] | Sequence[str], runs_dir: str | os.PathLike | None = None, *,
           gpus: str | Sequence[str] | None = None, nproc_per_node: int | None = None,
           cpu_slots: int | None = None, start: bool = True) -> JobInfo:
    """Validate, create the run dir (config.json, signed job.json, status queued), enqueue, and schedule.

    `config` is a RunConfig, a config dict, or train CLI options. An invalid config, GPU list or
    process count raises ConfigError naming the field before anything is written. `cpu_slots`,
    when given, is stored in the queue for every later scheduler. Returns the job as queued or,
    when a slot was free, running.
    """
    cfg = _as_config(config)
    preflight(cfg)  # as `train` does: an unknown model id or a too-long max_len is refused now
    plan = plan_resources(cfg, gpus, nproc_per_node)
    slots = None if cpu_slots is None else positive_int(cpu_slots, "cpu_slots", MAX_CPU_SLOTS)
    worker_cmd_prefix()  # a bad $NEWSCLF_WORKER_CMD is refused now, not at launch
    ensure_key()  # a shared or unreadable signing key is refused before anything is written
    root = resolve_runs_dir(runs_dir)
    if root == key_path().resolve().parent or root in key_path().resolve().parents:
        raise ConfigError(ENV_JOB_KEY_FILE, f"the job signing key {key_path()} must lie outside the runs dir")
    root.mkdir(parents=True, exist_ok=True)
    config_dict = json.loads(json.dumps(cfg.to_dict()))  # exactly what config.json will read back as
    with queue_lock(root):
        run_dir = store.create_run_dir(root, run_name(cfg))
        now = time.time()
        spec = dict(id=run_dir.name, submitted=now, **plan, torchrun=plan["nproc_per_node"] > 1,
                    resume=False, attempt=1)  # sign_job adds the nonce
        sign_job(spec, config_dict)
        store.write_json_atomic(run_dir / store.CONFIG, config_dict)
        store.write_json_atomic(run_dir / JOB_FILE, spec)
        store.write_json_atomic(run_dir / store.STATUS,
                                {"state": "queued", "created": now, "updated": now, "job": public_job(spec)})
        queue = read_queue(root)
        queue["queue"].append(run_dir.name)
        if slots is not None:
            queue["cpu_slots"] = slots
        write_queue(root, queue)
    if start:
        schedule(root)
    return job_status(run_dir.name, root, reconcile=False)


def resume(job_id: str, runs_dir: str | os.PathLike | None = None, *, start: bool = True) -> JobInfo:
    """Queue a failed or cancelled job again in the same run dir; its trainer runs with `--resume`.

    Raises JobError unless the job was submitted by this installation (valid signature), is
    failed/cancelled and its run holds a last/ checkpoint.
    """
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    with queue_lock(root):
        try:
            trusted = load_trusted_job(run_dir)
        except UntrustedJobError as exc:
            raise JobError(f"{run_dir.name}: {exc}") from None
        spec = dict(files.read_json(run_dir, JOB_FILE, {}))
        status = files.read_status(run_dir)
        if status["state"] not in ("failed", "cancelled"):
            raise JobError(f"{run_dir.name} is {status['state']}; only failed or cancelled jobs can be resumed")
        if not (run_dir / store.LAST).is_dir():
            raise JobError(f"{run_dir.name} has no {store.LAST}/ checkpoint to resume from")
        spec = {**spec, **trusted.plan}
        spec.update(resume=True, attempt=trusted.plan["attempt"] + 1, submitted=time.time())
        sign_job(spec, trusted.raw_config)  # a new attempt, a new nonce: a launch of its own
        store.write_json_inside(run_dir, store.CONFIG, trusted.raw_config)  # the config that was verified
        store.write_json_inside(run_dir, JOB_FILE, spec)
        with contextlib.suppress(FileNotFoundError):
            (run_dir / store.STOP).unlink()
        files.update_status(run_dir, state="queued", reason=None, error=None, exit_code=None, ended=None,
                            released=None, cancel=None, worker=None, worker_sig=None, job=public_job(spec))
        queue = read_queue(root)
        if run_dir.name not in queue["queue"]:
            queue["queue"].append(run_dir.name)
        write_queue(root, queue)
    if start:
        schedule(root)
    return job_status(run_dir.name, root, reconcile=False)


def _ours(run_dir: Path) -> bool:
    """A job this installation signed, or a run trained outside the queue (no job.json)."""
    if not os.path.lexists(run_dir / JOB_FILE):
        return True
    try:
        load_trusted_job(run_dir)
    except UntrustedJobError:
        return False
    except JobError:
        pass  # ours, but its config no longer validates
    return True


def _seconds(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a number of seconds, got {value!r}") from None
    if not math.isfinite(number) or not 0 <= number <= MAX_CANCEL_TIMEOUT_S:
        raise ConfigError(name, f"must be between 0 and {MAX_CANCEL_TIMEOUT_S:.0f} seconds, got {value!r}")
    return number


def cancel(job_id: str, runs_dir: str | os.PathLike | None = None, *, timeout: float = DEFAULT_CANCEL_TIMEOUT_S,
           grace: float = DEFAULT_KILL_GRACE_S, wait: bool = False) -> JobInfo:
    """Cancel a job. Queued: removed from the queue and marked cancelled. Running: a graceful stop
    request (STOP file, checked by the trainer between steps); after `timeout` s the supervisor kills
    the trainer's process tree (SIGTERM, then SIGKILL after `grace` s). Terminal jobs are left alone.
    With `wait`, returns once the job is terminal (or raises TimeoutError). A timeout or grace that
    is negative, NaN, infinite or over a week raises ConfigError."""
    timeout, grace = _seconds(timeout, "timeout"), _seconds(grace, "grace")
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    with queue_lock(root):
        queue = read_queue(root)
        state = files.read_status(run_dir)["state"]
        if not _ours(run_dir):  # a stranger's folder: out of our queue at most, never signalled or written
            if run_dir.name in queue["queue"]:
                queue["queue"].remove(run_dir.name)
                write_queue(root, queue)
            elif state not in store.TERMINAL_STATES:
                raise JobError(f"{run_dir.name}: {UNTRUSTED}: newsclf does not stop it (it holds no slot here); "
                               f"delete it with `python -m newsclf runs delete {run_dir.name}`")
            return job_status(run_dir.name, root, reconcile=False)
        if run_dir.name in queue["queue"] or state == "queued":
            if run_dir.name in queue["queue"]:
                queue["queue"].remove(run_dir.name)
                write_queue(root, queue)
            files.update_status_if(run_dir, ("queued", "unknown"), state="cancelled",
                                   reason="cancelled while queued", ended=time.time(), released=True)
        elif state not in store.TERMINAL_STATES:
            now = time.time()
            files.request_stop(run_dir)
            files.update_status(run_dir, cancel={"requested": now, "timeout": timeout, "grace": grace,
                                                 "deadline": now + timeout})
    info = job_status(run_dir.name, root)
    deadline = time.time() + timeout + grace + 30
    while wait and not info.terminal:
        if time.time() > deadline:
            raise TimeoutError(f"job {run_dir.name} did not stop within {timeout + grace + 30:.0f} s")
        time.sleep(POLL_S)
        info = job_status(run_dir.name, root)
    return info
