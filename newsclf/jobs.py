"""Background training jobs: a FIFO queue on disk, supervised subprocess workers, cancel, reconcile.

Files (all inside the runs dir, so the queue survives app restarts and reboots)::

    <runs_dir>/.queue.json         {"queue": [job ids, FIFO], "cpu_slots": N?}   (atomic writes)
    <runs_dir>/.queue.lock         flock guarding every queue read-modify-write and every launch
    <runs_dir>/<id>/job.json       the job spec written at submit (slot, GPUs, worker command, cwd,
                                   env) plus a `launch` record (supervisor pid/start time, GPUs)
    <runs_dir>/<id>/status.json    the store contract; this module adds `job`, `worker`, `cancel`,
                                   `released`, `exit_code`, `started`, `ended`

A job id is its run id. A started job runs under a small supervisor (`python -m newsclf.jobs
supervise RUN_DIR`) in its own session; the supervisor starts the trainer (`python -m newsclf train
--run-dir RUN_DIR`, or torchrun) in its own process group with output to train.log, enforces a
cancel deadline, records a terminal state the trainer could not write (killed, crashed), kills
what is left of the trainer's process tree, and then calls `schedule()` so the next queued job
starts by itself. Any `list_jobs`/`job_status` call reconciles: a job whose supervisor and trainer
are gone (SIGKILL, reboot) is marked failed "worker died", guarded against PID reuse by the
process start time and the boot id.

Slots: one job per GPU (ids from $NEWSCLF_GPUS, else $CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`)
and `cpu_slots` concurrent CPU jobs ($NEWSCLF_CPU_SLOTS, default 1). Queued jobs start in FIFO
order per resource kind. This module never imports torch.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

from newsclf import store
from newsclf.config import ConfigError, RunConfig, parse_train_args, resolve_data_home, resolve_runs_dir

QUEUE_FILE = ".queue.json"
QUEUE_LOCK = ".queue.lock"
JOB_FILE = "job.json"
PROJECT_ROOT = Path(__file__).resolve().parents[1]

ENV_WORKER_CMD = "NEWSCLF_WORKER_CMD"  # JSON argv prefix of the trainer; `--run-dir DIR` is appended
ENV_CPU_SLOTS = "NEWSCLF_CPU_SLOTS"
ENV_GPUS = "NEWSCLF_GPUS"  # comma-separated GPU ids; "" or "none" = no GPU
DEFAULT_CANCEL_TIMEOUT_S = 30.0  # graceful stop window before the process tree is killed
DEFAULT_KILL_GRACE_S = 5.0  # between SIGTERM and SIGKILL
POLL_S = 0.2
WORKER_DIED = "worker died"
_OWN_PREFIX = "[newsclf.jobs] "  # the supervisor's own lines in train.log

# Environment captured at submit so a job started later (by another job's supervisor) runs as submitted.
_ENV_PREFIXES = ("NEWSCLF_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OMP_", "MKL_", "PYTORCH_", "TORCH_", "NCCL_")
_ENV_SCHEDULER = {ENV_GPUS, ENV_CPU_SLOTS, ENV_WORKER_CMD, "CUDA_VISIBLE_DEVICES"}
_ENV_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|_KEY$", re.I)


class JobError(ValueError):
    """A job operation that cannot be done in the job's current state (e.g. resume without last/)."""


# ---- the job as readers see it ---------------------------------------------------------------
@dataclass
class JobInfo:
    """One job (a run with a job.json), as list_jobs/job_status report it."""

    id: str
    path: Path
    state: str  # queued | running | finished | failed | cancelled | unknown
    model: str = "?"
    name: str = ""
    reason: str | None = None
    error: str | None = None
    submitted: float | None = None
    started: float | None = None
    ended: float | None = None
    slot: str = "cpu"  # cpu | gpu
    gpus: list[str] = field(default_factory=list)  # assigned (running) or requested (queued)
    nproc_per_node: int = 1
    queue_position: int | None = None  # 1-based while queued
    pid: int | None = None
    exit_code: int | None = None
    cancel_requested: bool = False
    progress: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state in store.TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


# ---- process identity (PID-reuse guard) --------------------------------------------------------
_CHILDREN: dict[int, subprocess.Popen] = {}
_CHILDREN_LOCK = threading.Lock()


def _reap_children() -> None:
    """Reap supervisors this process started, so they never linger as zombies."""
    with _CHILDREN_LOCK:
        for pid, proc in list(_CHILDREN.items()):
            if proc.poll() is not None:
                del _CHILDREN[pid]


@lru_cache(maxsize=1)
def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) from /proc/<pid>/stat, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    rest = text[text.rfind(")") + 2:].split()  # comm may hold spaces and parentheses
    try:
        return rest[0], int(rest[1]), int(rest[19])  # fields 3, 4 and 22
    except (IndexError, ValueError):
        return None


def process_identity(pid: int) -> dict[str, Any]:
    """{pid, start, boot}: enough to tell this process from a later one that reuses its pid."""
    stat = _proc_stat(pid)
    return {"pid": pid, "start": stat[2] if stat else None, "boot": _boot_id()}


def process_alive(ident: dict[str, Any] | None) -> bool:
    """Is the process recorded in `ident` still running (not a zombie, not a reused pid)?"""
    if not isinstance(ident, dict) or not isinstance(ident.get("pid"), int) or ident["pid"] <= 0:
        return False
    pid = ident["pid"]
    _reap_children()
    if ident.get("boot") and _boot_id() and ident["boot"] != _boot_id():
        return False
    stat = _proc_stat(pid)
    if stat is None:
        if Path("/proc/self/stat").exists():
            return False
        try:  # no /proc: best effort
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    state, _, start = stat
    if ident.get("start") is not None and start != ident["start"]:
        return False
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # our own zombie (same start time): reap it
        return False
    return True


def _descendants(pid: int) -> list[int]:
    """Pids of every live descendant of `pid` (a /proc snapshot)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[0] not in ("Z", "X"):
                children.setdefault(stat[1], []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _signal_tree(pgid: int | None, sig: int, extra_pids: Sequence[int] = ()) -> None:
    """Send `sig` to a process group and to some pids; never to our own group or to init."""
    if isinstance(pgid, int) and pgid > 1 and pgid != os.getpgrp():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for pid in extra_pids:
        if pid > 1 and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


# ---- slots ------------------------------------------------------------------------------------
def _split_ids(text: str) -> list[str]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        if part in ("-1", "none", "None"):
            break  # CUDA hides every device after an invalid id
        if part:
            ids.append(part)
    return ids


@lru_cache(maxsize=1)
def nvidia_smi_gpus() -> tuple[tuple[str, str], ...]:
    """((id, "GPU 0: NVIDIA H100 ..."), ...) from `nvidia-smi -L`; empty without a driver (never torch)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    if out.returncode != 0:
        return ()
    return tuple((m.group(1), m.group(0).split(" (UUID")[0].strip())
                 for m in re.finditer(r"^GPU (\d+):.*$", out.stdout, re.M))


def _nvidia_smi_ids() -> tuple[str, ...]:
    return tuple(gpu_id for gpu_id, _ in nvidia_smi_gpus())


def visible_gpus() -> list[str]:
    """GPU ids jobs may use: $NEWSCLF_GPUS > $CUDA_VISIBLE_DEVICES > `nvidia-smi -L` (never torch)."""
    for name in (ENV_GPUS, "CUDA_VISIBLE_DEVICES"):
        if name in os.environ:
            return _split_ids(os.environ[name])
    return list(_nvidia_smi_ids())


def _positive_int(value: Any, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(name, f"must be a positive integer, got {value!r}") from None
    if number <= 0 or isinstance(value, bool):
        raise ConfigError(name, f"must be a positive integer, got {value!r}")
    return number


def resolve_cpu_slots(runs_dir: str | os.PathLike | None = None, override: int | None = None) -> int:
    """Concurrent CPU jobs: `override` > the value stored in the queue (set_cpu_slots, submit's
    cpu_slots) > $NEWSCLF_CPU_SLOTS > 1. A bad stored or env value falls back (never breaks scheduling)."""
    if override is not None:
        return _positive_int(override, "cpu_slots")
    candidates = []
    if runs_dir is not None:
        candidates.append(_read_queue(resolve_runs_dir(runs_dir)).get("cpu_slots"))
    candidates.append(os.environ.get(ENV_CPU_SLOTS) or None)
    for value in candidates:
        if value is not None:
            with contextlib.suppress(ConfigError):
                return _positive_int(value, "cpu_slots")
    return 1


def set_cpu_slots(runs_dir: str | os.PathLike | None, slots: int | None) -> None:
    """Store the number of concurrent CPU jobs for every scheduler of this runs dir (None: back to the
    env default); queued jobs start at once if slots were added."""
    root = resolve_runs_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    value = None if slots is None else _positive_int(slots, "cpu_slots")
    with _queue_lock(root):
        queue = _read_queue(root)
        queue.pop("cpu_slots", None) if value is None else queue.update(cpu_slots=value)
        _write_queue(root, queue)
    schedule(root)


def _plan_resources(cfg: RunConfig, gpus: str | Sequence[str] | None, nproc: int | None) -> dict[str, Any]:
    """Decide slot kind, GPU count/ids and torchrun use; raise ConfigError naming the field."""
    nproc = None if nproc is None else _positive_int(nproc, "nproc_per_node")
    visible = visible_gpus()
    if gpus is not None and not isinstance(gpus, str):
        gpus = ",".join(str(g) for g in gpus)
    if gpus:
        wanted = [g.strip() for g in gpus.split(",") if g.strip()]
        if not wanted or len(set(wanted)) != len(wanted):
            raise ConfigError("gpus", f"expected distinct comma-separated GPU ids, got {gpus!r}")
        if cfg.device == "cpu":
            raise ConfigError("device", "device cpu conflicts with --gpus")
        missing = [g for g in wanted if g not in visible]
        if missing:
            shown = ", ".join(visible) or "none"
            raise ConfigError("gpus", f"GPU {missing[0]} is not visible (visible: {shown})")
        if nproc is not None and nproc != len(wanted):
            raise ConfigError("nproc_per_node", f"{nproc} processes for {len(wanted)} GPUs ({gpus})")
        return dict(slot="gpu", gpu_count=len(wanted), gpus=wanted, nproc_per_node=len(wanted))
    on_gpu = cfg.device == "cuda" or (cfg.device == "auto" and bool(visible) and cfg.model != "tfidf")
    if cfg.device == "cuda" and not visible:
        raise ConfigError("device", "cuda requested but no GPU is visible (set NEWSCLF_GPUS or CUDA_VISIBLE_DEVICES)")
    if on_gpu:
        count = nproc or 1
        if count > len(visible):
            raise ConfigError("nproc_per_node", f"{count} processes need {count} GPUs; {len(visible)} visible")
        return dict(slot="gpu", gpu_count=count, gpus=None, nproc_per_node=count)
    return dict(slot="cpu", gpu_count=0, gpus=None, nproc_per_node=nproc or 1)


# ---- queue file -------------------------------------------------------------------------------
def _read_queue(runs_dir: Path) -> dict[str, Any]:
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


def _write_queue(runs_dir: Path, data: dict[str, Any]) -> None:
    store.write_json_atomic(Path(runs_dir) / QUEUE_FILE, data)


def _queue_lock(runs_dir: Path):
    return store.file_lock(Path(runs_dir) / QUEUE_LOCK)


def _read_spec(run_dir: Path) -> dict[str, Any] | None:
    spec = store.read_json(Path(run_dir) / JOB_FILE)
    return spec if isinstance(spec, dict) else None


def _update_status_if(run_dir: Path, allowed: Sequence[str], **updates: Any) -> dict[str, Any] | None:
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


def _public_job(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of job.json copied into status.json for the UI (no environment)."""
    keys = ("submitted", "slot", "gpu_count", "gpus", "nproc_per_node", "torchrun", "worker_cmd", "resume", "attempt")
    return {k: spec.get(k) for k in keys if k in spec}


# ---- submit -----------------------------------------------------------------------------------
def _worker_cmd_prefix() -> list[str]:
    text = os.environ.get(ENV_WORKER_CMD)
    if not text:
        return [sys.executable, "-m", "newsclf", "train"]
    try:
        cmd = json.loads(text)
    except json.JSONDecodeError:
        cmd = None
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, str) for c in cmd):
        raise ConfigError(ENV_WORKER_CMD, "must be a JSON list of strings (argv prefix)")
    return cmd


def _captured_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k.startswith(_ENV_PREFIXES) and k not in _ENV_SCHEDULER and not _ENV_SECRET.search(k)}


def _as_config(config: RunConfig | dict[str, Any] | Sequence[str]) -> RunConfig:
    if isinstance(config, RunConfig):
        cfg = config.resolved()
    elif isinstance(config, dict):
        cfg = RunConfig.from_dict(config).resolved()
    else:
        cfg = parse_train_args(list(config))
    # The job may start later from another process: pin the data home to an absolute path now.
    cfg.data_home = str(resolve_data_home(cfg.data_home or None))
    return cfg


def submit(config: RunConfig | dict[str, Any] | Sequence[str], runs_dir: str | os.PathLike | None = None, *,
           gpus: str | Sequence[str] | None = None, nproc_per_node: int | None = None,
           cpu_slots: int | None = None, start: bool = True) -> JobInfo:
    """Validate, create the run dir (config.json, job.json, status queued), enqueue, and schedule.

    `config` is a RunConfig, a config dict, or train CLI options. An invalid config, GPU list or
    process count raises ConfigError naming the field before anything is written. `cpu_slots`,
    when given, is stored in the queue for every later scheduler. Returns the job as queued or,
    when a slot was free, running.
    """
    cfg = _as_config(config)
    plan = _plan_resources(cfg, gpus, nproc_per_node)
    slots = None if cpu_slots is None else _positive_int(cpu_slots, "cpu_slots")
    worker_cmd = _worker_cmd_prefix()
    root = resolve_runs_dir(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    with _queue_lock(root):
        run_dir = store.create_run_dir(root, cfg.name or cfg.model)
        now = time.time()
        spec = dict(id=run_dir.name, submitted=now, **plan, torchrun=plan["nproc_per_node"] > 1,
                    worker_cmd=worker_cmd, cwd=os.getcwd(), env=_captured_env(), resume=False, attempt=1)
        store.write_json_atomic(run_dir / store.CONFIG, cfg.to_dict())
        store.write_json_atomic(run_dir / JOB_FILE, spec)
        store.write_json_atomic(run_dir / store.STATUS,
                                {"state": "queued", "created": now, "updated": now, "job": _public_job(spec)})
        queue = _read_queue(root)
        queue["queue"].append(run_dir.name)
        if slots is not None:
            queue["cpu_slots"] = slots
        _write_queue(root, queue)
    if start:
        schedule(root)
    return job_status(run_dir.name, root, reconcile=False)


def resume(job_id: str, runs_dir: str | os.PathLike | None = None, *, start: bool = True) -> JobInfo:
    """Queue a failed or cancelled job again in the same run dir; its trainer runs with `--resume`.

    Raises JobError unless the job is failed/cancelled and its run holds a last/ checkpoint.
    """
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    with _queue_lock(root):
        spec = _read_spec(run_dir)
        status = store.read_status(run_dir)
        if spec is None:
            raise JobError(f"{run_dir.name} is not a job (no {JOB_FILE})")
        if status["state"] not in ("failed", "cancelled"):
            raise JobError(f"{run_dir.name} is {status['state']}; only failed or cancelled jobs can be resumed")
        if not (run_dir / store.LAST).is_dir():
            raise JobError(f"{run_dir.name} has no {store.LAST}/ checkpoint to resume from")
        spec.pop("launch", None)
        spec.update(resume=True, attempt=int(spec.get("attempt", 1)) + 1, submitted=time.time())
        store.write_json_atomic(run_dir / JOB_FILE, spec)
        with contextlib.suppress(FileNotFoundError):
            (run_dir / store.STOP).unlink()
        store.update_status(run_dir, state="queued", reason=None, error=None, exit_code=None, ended=None,
                            released=None, cancel=None, worker=None, job=_public_job(spec))
        queue = _read_queue(root)
        if run_dir.name not in queue["queue"]:
            queue["queue"].append(run_dir.name)
        _write_queue(root, queue)
    if start:
        schedule(root)
    return job_status(run_dir.name, root, reconcile=False)


# ---- scheduling and reconciling ---------------------------------------------------------------
def _scan_jobs(root: Path) -> dict[str, tuple[Path, dict[str, Any], dict[str, Any]]]:
    jobs = {}
    if not root.is_dir():
        return jobs
    for path in root.iterdir():
        if path.is_dir() and store.RUN_ID_RE.match(path.name):
            spec = _read_spec(path)
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
    with _queue_lock(root):
        queue = _read_queue(root)
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
            _write_queue(root, queue)
            _launch(path, spec, assigned)
            started.append(job_id)
        _write_queue(root, queue)
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
                                                          "updated": time.time(), "job": _public_job(spec)})
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
    supervisor_alive = process_alive(launch.get("supervisor"))
    if state in store.TERMINAL_STATES:
        return supervisor_alive
    if supervisor_alive:
        return True
    worker = status.get("worker")
    if process_alive(worker):  # supervisor gone, trainer still going: let it finish
        cancel = status.get("cancel") or {}
        if cancel and time.time() >= float(cancel.get("deadline", 0)):
            _signal_tree(worker.get("pgid"), signal.SIGKILL, _descendants(worker["pid"]))
        return True
    _finalize(run_dir, returncode=None, log_offset=(worker or {}).get("log_offset", 0), launched=bool(launch))
    return False


# ---- terminal state and failure reasons ---------------------------------------------------------
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


def _log_since(run_dir: Path, offset: int, limit: int = 256_000, own_lines: bool = True) -> str:
    try:
        with open(Path(run_dir) / store.LOG, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(int(offset or 0), size - limit, 0))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if own_lines:
        return text
    return "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith(_OWN_PREFIX))


def _error_text(log_text: str, limit: int = 20_000) -> str:
    start = log_text.rfind("Traceback (most recent call last):")
    text = log_text[start:] if start >= 0 else "\n".join(log_text.splitlines()[-40:])
    return text[-limit:]


def _finalize(run_dir: Path, *, returncode: int | None, log_offset: int = 0, launched: bool = True,
              killed_for_cancel: bool = False, terminated_by: str | None = None) -> dict[str, Any]:
    """Record how a job ended when its trainer could not; mark the slot released. Idempotent."""
    now = time.time()
    extra: dict[str, Any] = {"released": True, "exit_code": returncode, "phase": None}
    status = store.read_status(run_dir)
    if status["state"] in store.TERMINAL_STATES:  # the trainer wrote it: keep it, fill gaps
        if status["state"] == "failed" and not status.get("reason"):
            log = _log_since(run_dir, log_offset, own_lines=False)
            extra.update(reason=classify_failure(returncode, log), error=status.get("error") or _error_text(log))
        if not status.get("ended"):
            extra["ended"] = now
        return _update_status_if(run_dir, store.TERMINAL_STATES, **extra) or status
    log = _log_since(run_dir, log_offset, own_lines=False)
    has_results = isinstance(store.read_json(run_dir / store.RESULTS), dict)
    if status["state"] == "unknown" and returncode is None and has_results:
        updates = dict(state="finished", reason="status.json was unreadable; restored from results.json")
    elif store.stop_requested(run_dir) and (returncode in (0, None) or killed_for_cancel):
        reason = "cancelled" + (" (killed after the stop timeout)" if killed_for_cancel else "")
        updates = dict(state="cancelled", reason=reason)
    elif returncode == 0 and has_results:
        updates = dict(state="finished")
    elif returncode == 0:
        updates = dict(state="failed", reason=f"{WORKER_DIED} (exited without a final status)", error=_error_text(log))
    elif not launched:
        updates = dict(state="failed", reason=f"{WORKER_DIED} (never started)")
    elif terminated_by:
        updates = dict(state="failed", reason=f"worker killed (supervisor received {terminated_by})",
                       error=_error_text(log))
    else:
        updates = dict(state="failed", reason=classify_failure(returncode, log), error=_error_text(log))
    return _update_status_if(run_dir, ("queued", "running", "unknown"), ended=now, **updates, **extra) \
        or store.read_status(run_dir)


# ---- launching (scheduler side) ----------------------------------------------------------------
def _job_env(spec: dict[str, Any]) -> dict[str, str]:
    """This process's environment with the job's captured variables and the project on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith(_ENV_PREFIXES) and k not in _ENV_SCHEDULER)}
    env.update({k: str(v) for k, v in (spec.get("env") or {}).items()})
    paths = [str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(PROJECT_ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _job_cwd(spec: dict[str, Any], run_dir: Path) -> str:
    cwd = spec.get("cwd")
    return cwd if cwd and Path(cwd).is_dir() else str(run_dir.parent)


def _launch(run_dir: Path, spec: dict[str, Any], gpus: list[str]) -> None:
    """Start the supervisor of one job (caller holds the queue lock)."""
    now = time.time()
    spec["launch"] = {"started": now, "gpus": gpus}  # before the start: the supervisor reads its GPUs here
    store.write_json_atomic(run_dir / JOB_FILE, spec)
    store.update_status(run_dir, state="running", started=now, phase="starting", released=None,
                        job={**_public_job(spec), "gpus": gpus or spec.get("gpus")})
    cmd = [sys.executable, "-m", "newsclf.jobs", "supervise", str(run_dir)]
    try:
        with open(run_dir / store.LOG, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=_job_cwd(spec, run_dir), env=_job_env(spec), start_new_session=True)
    except OSError as exc:
        store.update_status(run_dir, state="failed", reason=f"{WORKER_DIED} (could not start: {exc})",
                            ended=time.time(), released=True)
        return
    with _CHILDREN_LOCK:
        _CHILDREN[proc.pid] = proc
    spec["launch"]["supervisor"] = process_identity(proc.pid)
    store.write_json_atomic(run_dir / JOB_FILE, spec)
    store.update_status(run_dir, supervisor=spec["launch"]["supervisor"])


def build_worker_command(spec: dict[str, Any], run_dir: Path) -> list[str]:
    """The trainer argv, under torchrun when nproc_per_node > 1: the worker prefix + `--run-dir DIR`,
    or for a resumed job `--resume DIR --runs-dir RUNS_DIR` (the trainer continues from last/)."""
    prefix = list(spec.get("worker_cmd") or [sys.executable, "-m", "newsclf", "train"])
    if spec.get("resume"):
        tail = ["--resume", str(run_dir), "--runs-dir", str(run_dir.parent)]
    else:
        tail = ["--run-dir", str(run_dir)]
    nproc = int(spec.get("nproc_per_node") or 1)
    if nproc <= 1:
        return prefix + tail
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    if Path(prefix[0]).name.startswith("python"):
        return launcher + prefix[1:] + tail  # `-m newsclf train ...` or `script.py ...`
    return launcher + ["--no-python"] + prefix + tail


# ---- the supervisor (its own process, `python -m newsclf.jobs supervise RUN_DIR`) ------------------
def _become_subreaper() -> None:
    """Orphaned descendants (torchrun workers live in their own sessions) get reparented to us."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _exited(pid: int) -> bool:
    """Has our child `pid` exited? (does not reap it, so its process group id stays reserved)"""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _reap_adopted(keep: int) -> None:
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None or info.si_pid == keep:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def _kill_everything(pgid: int, sig: int) -> None:
    _signal_tree(pgid, sig, _descendants(os.getpid()))


def supervise(run_dir: str | os.PathLike) -> int:
    """Run one job's trainer to the end and record the outcome; then start the next queued job."""
    run_dir = Path(run_dir).resolve()
    spec = _read_spec(run_dir) or {}
    _become_subreaper()
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if store.stop_requested(run_dir):
            _finalize(run_dir, returncode=None, launched=False)
            return 0
        rc = _run_worker(run_dir, spec, received)
        return 0 if rc == 0 else 1
    except Exception:  # e.g. the worker command does not exist: record it, never leave "running"
        traceback.print_exc()
        sys.stderr.flush()
        _kill_everything(0, signal.SIGKILL)
        _finalize(run_dir, returncode=None, log_offset=_log_size(run_dir) - 20_000)
        return 1
    finally:
        with contextlib.suppress(Exception):
            schedule(run_dir.parent)


def _run_worker(run_dir: Path, spec: dict[str, Any], received: list[str]) -> int:
    gpus = (spec.get("launch") or {}).get("gpus") or []
    env = _job_env(spec)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # "" hides every GPU from a CPU job
    env["NEWSCLF_RUNS_DIR"] = str(run_dir.parent)
    cmd = build_worker_command(spec, run_dir)
    with open(run_dir / store.LOG, "ab") as log:
        offset = log.seek(0, os.SEEK_END)
        log.write(f"{_OWN_PREFIX}{time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=_job_cwd(spec, run_dir), env=env, process_group=0)
    worker = {**process_identity(proc.pid), "pgid": proc.pid, "log_offset": offset}
    store.update_status(run_dir, worker=worker, phase="training")
    killed = _wait_worker(proc, run_dir, received)
    _kill_everything(proc.pid, signal.SIGKILL)  # leftovers: DataLoader workers, torchrun ranks
    rc = proc.wait()
    _reap_adopted(keep=-1)
    with open(run_dir / store.LOG, "ab") as log:
        log.write(f"{_OWN_PREFIX}worker exited with code {rc}\n".encode())
    _finalize(run_dir, returncode=rc, log_offset=offset, killed_for_cancel=killed,
              terminated_by=received[0] if received and not killed else None)
    return rc


def _wait_worker(proc: subprocess.Popen, run_dir: Path, received: list[str]) -> bool:
    """Poll until the trainer exits, enforcing a cancel deadline; True if it had to be killed for it."""
    term_at: float | None = None
    killed = False
    while not _exited(proc.pid):
        now = time.time()
        if received and term_at is None:
            _kill_everything(proc.pid, signal.SIGTERM)
            term_at = now
        elif term_at is None and store.stop_requested(run_dir):
            cancel = store.read_status(run_dir).get("cancel") or {}
            deadline = cancel.get("deadline") or _stop_time(run_dir) + DEFAULT_CANCEL_TIMEOUT_S
            if now >= float(deadline):
                _kill_everything(proc.pid, signal.SIGTERM)
                term_at, killed = now, True
        if term_at is not None:
            grace = (store.read_status(run_dir).get("cancel") or {}).get("grace", DEFAULT_KILL_GRACE_S)
            if now >= term_at + float(grace):
                _kill_everything(proc.pid, signal.SIGKILL)
        _reap_adopted(keep=proc.pid)
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


# ---- reading ------------------------------------------------------------------------------------
_PROGRESS: dict[str, tuple[tuple[int, int], int, dict[str, Any]]] = {}
_PROGRESS_LOCK = threading.Lock()
_STEP_KEYS = ("step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s", "time")


def read_progress(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Progress from metrics.jsonl, read incrementally (only new complete lines on each call).

    Keys (when known): step, total_steps, epoch, loss, lr, samples_per_s, eta_s, time, percent,
    last_epoch (the last epoch event), done. A half-written last line is left for the next call.
    """
    path = Path(run_dir) / store.METRICS
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (st.st_dev, st.st_ino)
    with _PROGRESS_LOCK:
        cached = _PROGRESS.get(str(path))
        if cached is None or cached[0] != key or st.st_size < cached[1]:
            cached = (key, 0, {})
        events, offset = store.read_metrics(path, cached[1])
        progress = dict(cached[2])
        for event in events:
            _apply_event(progress, event)
        _PROGRESS[str(path)] = (key, offset, progress)
    return dict(progress)


def _apply_event(progress: dict[str, Any], event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "step":
        progress.update({k: event[k] for k in _STEP_KEYS if k in event})
        step, total = progress.get("step"), progress.get("total_steps")
        if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
            progress["percent"] = round(100.0 * min(step, total) / total, 1)
    elif kind == "epoch":
        progress["last_epoch"] = {k: v for k, v in event.items() if k != "type"}
    elif kind == "done":
        progress.update(done=True, percent=100.0, eta_s=0.0)


def _job_info(run_dir: Path, queue_ids: list[str]) -> JobInfo:
    spec = _read_spec(run_dir) or {}
    status = store.read_status(run_dir)
    config = store.read_json(run_dir / store.CONFIG, default={}) or {}
    launch = spec.get("launch") or {}
    progress = read_progress(run_dir)
    if status["state"] == "finished":
        progress.update(percent=100.0, eta_s=0.0)
    position = queue_ids.index(run_dir.name) + 1 if run_dir.name in queue_ids else None
    worker = status.get("worker") or {}
    return JobInfo(
        id=run_dir.name, path=run_dir, state=status["state"], model=config.get("model", "?"),
        name=config.get("name", ""), reason=status.get("reason"), error=status.get("error"),
        submitted=spec.get("submitted") or status.get("created"), started=status.get("started"),
        ended=status.get("ended"), slot=spec.get("slot", "cpu"), gpus=launch.get("gpus") or spec.get("gpus") or [],
        nproc_per_node=int(spec.get("nproc_per_node") or 1), queue_position=position,
        pid=status.get("trainer_pid") or status.get("pid") or worker.get("pid"), exit_code=status.get("exit_code"),
        cancel_requested=store.stop_requested(run_dir) or bool(status.get("cancel")), progress=progress)


def list_jobs(runs_dir: str | os.PathLike | None = None, *, reconcile: bool = True) -> list[JobInfo]:
    """Every job in the runs dir, newest first. With `reconcile`, dead workers are marked failed and
    queued jobs start on free slots first (so listing after a restart resumes the queue)."""
    root = resolve_runs_dir(runs_dir)
    if reconcile:
        schedule(root)
    queue_ids = _read_queue(root)["queue"]
    infos = [_job_info(path, queue_ids) for path in sorted(root.iterdir(), reverse=True)
             if path.is_dir() and store.RUN_ID_RE.match(path.name) and (path / JOB_FILE).is_file()] \
        if root.is_dir() else []
    return infos


def job_status(job_id: str, runs_dir: str | os.PathLike | None = None, *, reconcile: bool = True) -> JobInfo:
    """One job (any run id works; runs trained outside the queue have no slot info). Raises RunNotFoundError."""
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    if reconcile:
        schedule(root)
    return _job_info(run_dir, _read_queue(root)["queue"])


def cancel(job_id: str, runs_dir: str | os.PathLike | None = None, *, timeout: float = DEFAULT_CANCEL_TIMEOUT_S,
           grace: float = DEFAULT_KILL_GRACE_S, wait: bool = False) -> JobInfo:
    """Cancel a job. Queued: removed from the queue and marked cancelled. Running: a graceful stop
    request (STOP file, checked by the trainer between steps); after `timeout` s the supervisor kills
    the trainer's process tree (SIGTERM, then SIGKILL after `grace` s). Terminal jobs are left alone.
    With `wait`, returns once the job is terminal (or raises TimeoutError)."""
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    with _queue_lock(root):
        queue = _read_queue(root)
        state = store.read_status(run_dir)["state"]
        if run_dir.name in queue["queue"] or state == "queued":
            if run_dir.name in queue["queue"]:
                queue["queue"].remove(run_dir.name)
                _write_queue(root, queue)
            _update_status_if(run_dir, ("queued", "unknown"), state="cancelled", reason="cancelled while queued",
                              ended=time.time(), released=True)
        elif state not in store.TERMINAL_STATES:
            now = time.time()
            store.request_stop(run_dir)
            store.update_status(run_dir, cancel={"requested": now, "timeout": float(timeout),
                                                 "grace": float(grace), "deadline": now + float(timeout)})
    info = job_status(run_dir.name, root)
    deadline = time.time() + float(timeout) + float(grace) + 30
    while wait and not info.terminal:
        if time.time() > deadline:
            raise TimeoutError(f"job {run_dir.name} did not stop within {timeout + grace + 30:.0f} s")
        time.sleep(POLL_S)
        info = job_status(run_dir.name, root)
    return info


def tail_log(job_id: str, n: int = 50, runs_dir: str | os.PathLike | None = None) -> str:
    """The last `n` lines of the job's train.log ("" when there is none yet)."""
    run_dir = store.resolve_run(job_id, resolve_runs_dir(runs_dir))
    text = _log_since(run_dir, 0, limit=max(4096, 400 * int(n)))
    return "".join(text.splitlines(keepends=True)[-int(n):]) if n > 0 else ""


def follow_log(job_id: str, runs_dir: str | os.PathLike | None = None, *, lines: int = 20,
               poll_s: float = 0.5, timeout: float | None = None) -> Iterator[str]:
    """Yield the last `lines` lines, then each new complete line as train.log grows, until the job
    is terminal and its supervisor is done (or `timeout` s have passed)."""
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    path = run_dir / store.LOG
    try:
        offset = path.stat().st_size
    except OSError:
        offset = 0
    head = _read_range(path, max(0, offset - max(4096, 400 * lines)), offset)
    if lines > 0:
        yield from head.decode("utf-8", errors="replace").splitlines(keepends=True)[-lines:]
    pending = b""
    end_at = None if timeout is None else time.time() + timeout
    last_check = 0.0
    while True:
        finished = False
        if time.time() - last_check >= max(poll_s, 2.0):
            last_check = time.time()
            info = job_status(run_dir.name, root)  # reconciles, so a dead worker ends the follow
            finished = info.terminal and _released(run_dir)
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace") + "\n"
        if finished or (end_at is not None and time.time() > end_at):
            if pending:
                yield pending.decode("utf-8", errors="replace")
            return
        time.sleep(poll_s)


def _read_range(path: Path, start: int, end: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            return fh.read(max(0, end - start))
    except OSError:
        return b""


def _released(run_dir: Path) -> bool:
    status = store.read_status(run_dir)
    launch = (_read_spec(run_dir) or {}).get("launch") or {}
    return bool(status.get("released")) or not process_alive(launch.get("supervisor"))


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "supervise":
        return supervise(argv[1])
    print("usage: python -m newsclf.jobs supervise RUN_DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    from newsclf.jobs import _main as main  # the importable module, not this __main__ copy

    sys.exit(main(sys.argv[1:]))
