"""Reading jobs: progress from metrics.jsonl, JobInfo, list_jobs, job_status, tail_log, follow_log.

list_jobs/job_status reconcile first (newsclf.jobs.queue.schedule): a job whose supervisor and
trainer are gone is marked failed, a run trained outside the queue whose trainer died too, and
queued jobs start on free slots. Every file is read without following symlinks; values read
from a run dir are type-checked before they reach a JobInfo.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from newsclf import store
from newsclf.config import resolve_runs_dir
from newsclf.jobs import files, procs
from newsclf.jobs.outcome import log_since
from newsclf.jobs.queue import read_queue, schedule
from newsclf.jobs.spec import JOB_FILE, JobError, UntrustedJobError, load_trusted_job, read_spec


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


# ---- progress ----------------------------------------------------------------------------------
_PROGRESS: dict[str, tuple[tuple[int, int], int, dict[str, Any]]] = {}
_PROGRESS_LOCK = threading.Lock()
_STEP_KEYS = ("step", "total_steps", "epoch", "loss", "lr", "samples_per_s", "eta_s", "time")
_EVAL_KEYS = ("split", "done", "total", "overall_done", "overall_total", "eta_s")


def read_progress(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Progress from metrics.jsonl, read incrementally (only new complete lines on each call).

    Keys (when known): step, total_steps, epoch, loss, lr, samples_per_s, eta_s, time, percent,
    last_epoch (the last epoch event), done, stage ("evaluating" after training, then "done") and
    eval (the last evaluation event: split, done, total, overall_done, overall_total, eta_s). A half-written last line is left for the next call.
    A metrics.jsonl that is a symlink or not a regular file reads as no progress.
    """
    path = Path(run_dir) / store.METRICS
    try:
        with store.open_inside(run_dir, store.METRICS) as fh:
            st = os.fstat(fh.fileno())
    except OSError:  # missing, or refused (symlink, FIFO)
        return {}
    key = (st.st_dev, st.st_ino)
    with _PROGRESS_LOCK:
        cached = _PROGRESS.get(str(path))
        if cached is None or cached[0] != key or st.st_size < cached[1]:
            cached = (key, 0, {})
        events, consumed = store.read_metrics(path, cached[1])  # parsed and checked (runschema), streamed
        progress = dict(cached[2])
        for event in events:
            _apply_event(progress, event)
        _PROGRESS[str(path)] = (key, consumed, progress)
    return dict(progress)


def _apply_event(progress: dict[str, Any], event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "step":
        progress.update({k: event[k] for k in _STEP_KEYS if k in event}, stage="training")
        progress.pop("eval", None)
        step, total = progress.get("step"), progress.get("total_steps")
        if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
            progress["percent"] = round(100.0 * min(step, total) / total, 1)
    elif kind == "epoch":
        progress["last_epoch"] = {k: v for k, v in event.items() if k != "type"}
    elif kind == "eval":  # training is over; evaluation of val, then test, then latency
        ev = {k: event.get(k) for k in _EVAL_KEYS}
        if all(isinstance(ev[k], int) and not isinstance(ev[k], bool) for k in ("done", "total")):
            progress.update(stage="evaluating", eval=ev, percent=100.0, eta_s=_number(event.get("eta_s")))
    elif kind == "done":
        progress.update(done=True, percent=100.0, eta_s=0.0, stage="done")
        progress.pop("eval", None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _job_info(run_dir: Path, queue_ids: list[str]) -> JobInfo:
    """A JobInfo from files of an untrusted run dir: every field is type-checked, never trusted."""
    spec = read_spec(run_dir) or {}
    status = files.read_status(run_dir)
    config = files.read_json(run_dir, store.CONFIG, default={})
    config = config if isinstance(config, dict) else {}
    launch = spec.get("launch") if isinstance(spec.get("launch"), dict) else {}
    progress = read_progress(run_dir)
    if status["state"] == "finished":
        progress.update(percent=100.0, eta_s=0.0)
    position = queue_ids.index(run_dir.name) + 1 if run_dir.name in queue_ids else None
    worker = status.get("worker") if isinstance(status.get("worker"), dict) else {}
    reason = _text(status.get("reason"))
    if status["state"] == "queued":
        try:
            load_trusted_job(run_dir)
        except UntrustedJobError as exc:
            reason = str(exc)  # never launched from here; the owner's installation may still run it
        except JobError:
            pass
    gpus = launch.get("gpus") or spec.get("gpus")
    return JobInfo(
        id=run_dir.name, path=run_dir, state=status["state"], model=_text(config.get("model")) or "?",
        name=_text(config.get("name")) or "", reason=reason, error=_text(status.get("error")),
        submitted=_num(spec.get("submitted")) or _num(status.get("created")), started=_num(status.get("started")),
        ended=_num(status.get("ended")), slot="gpu" if spec.get("slot") == "gpu" else "cpu",
        gpus=[g for g in gpus if isinstance(g, str)] if isinstance(gpus, list) else [],
        nproc_per_node=_int(spec.get("nproc_per_node")) or 1, queue_position=position,
        pid=_int(status.get("trainer_pid")) or _int(status.get("pid")) or _int(worker.get("pid")),
        exit_code=_int(status.get("exit_code")),
        cancel_requested=store.stop_requested(run_dir) or bool(status.get("cancel")), progress=progress)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def list_jobs(runs_dir: str | os.PathLike | None = None, *, reconcile: bool = True) -> list[JobInfo]:
    """Every job in the runs dir, newest first. With `reconcile`, dead workers are marked failed and
    queued jobs start on free slots first (so listing after a restart resumes the queue)."""
    root = resolve_runs_dir(runs_dir)
    if reconcile:
        schedule(root)
    queue_ids = read_queue(root)["queue"]
    infos = [_job_info(path, queue_ids) for path in sorted(root.iterdir(), reverse=True)
             if store.RUN_ID_RE.match(path.name) and not path.is_symlink() and path.is_dir()
             and os.path.lexists(path / JOB_FILE)] if root.is_dir() else []
    return infos


def job_status(job_id: str, runs_dir: str | os.PathLike | None = None, *, reconcile: bool = True) -> JobInfo:
    """One job (any run id works; runs trained outside the queue have no slot info). Raises RunNotFoundError."""
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    if reconcile:
        schedule(root)
    return _job_info(run_dir, read_queue(root)["queue"])


def tail_log(job_id: str, n: int = 50, runs_dir: str | os.PathLike | None = None) -> str:
    """The last `n` lines of the job's train.log ("" when there is none yet, or n <= 0).
    Raises store.UnsafeRunFileError when train.log is a symlink or not a regular file."""
    run_dir = store.resolve_run(job_id, resolve_runs_dir(runs_dir))
    n = int(n)
    if n <= 0:
        return ""
    store.inside_run(run_dir, store.LOG)  # refuse a symlink loudly; log_since reads it with O_NOFOLLOW
    text = log_since(run_dir, 0, limit=max(4096, 400 * n))
    return "".join(text.splitlines(keepends=True)[-n:])


def follow_log(job_id: str, runs_dir: str | os.PathLike | None = None, *, lines: int = 20,
               poll_s: float = 0.5, timeout: float | None = None) -> Iterator[str]:
    """Yield the last `lines` lines, then each new complete line as train.log grows, until the job
    is terminal and its supervisor is done (or `timeout` s have passed). Raises
    store.UnsafeRunFileError when train.log is (or becomes) a symlink or not a regular file."""
    root = resolve_runs_dir(runs_dir)
    run_dir = store.resolve_run(job_id, root)
    store.inside_run(run_dir, store.LOG)
    offset = files.log_size(run_dir)
    head = _read_range(run_dir, max(0, offset - max(4096, 400 * lines)), offset)
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
            with store.open_inside(run_dir, store.LOG) as fh:
                fh.seek(offset)
                chunk = fh.read()
        except store.UnsafeRunFileError:
            raise
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


def _read_range(run_dir: Path, start: int, end: int) -> bytes:
    try:
        with store.open_inside(run_dir, store.LOG) as fh:
            fh.seek(start)
            return fh.read(max(0, end - start))
    except OSError:
        return b""


def _released(run_dir: Path) -> bool:
    status = files.read_status(run_dir)
    launch = (read_spec(run_dir) or {}).get("launch")
    launch = launch if isinstance(launch, dict) else {}
    supervisor = launch.get("supervisor")
    if not procs.on_this_machine(supervisor):  # another machine's: nothing to wait for here
        return True
    return bool(status.get("released")) or not procs.process_alive(supervisor)

