"""Shared helpers for the job tests: a fake trainer run through the real subprocess path, offline, on CPU.

Import the fixtures into a test module: ``from tests.helpers.jobs import fake_trainer, runs  # noqa: F401``.

The fake trainer (written below into a temp dir) follows the trainer contract: status running with
its pid, step events in metrics.jsonl, STOP honoured between steps, finished/failed/cancelled.
Its behaviour comes from the run name: sN = N steps, dX = X s per step, fail / crash / oom /
dataerr (fail at step 2), hang (ignores STOP and SIGTERM), child (spawns a grandchild), gpu (records
CUDA_VISIBLE_DEVICES), lastdir (creates last/ before failing).
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from newsclf import jobs, store

PROJECT_ROOT = Path(__file__).resolve().parents[2]


FAKE_TRAINER = textwrap.dedent('''
    import json, os, re, signal, subprocess, sys, time, traceback
    from pathlib import Path
    from newsclf import store

    argv = sys.argv[1:]
    resuming = "--resume" in argv
    run_dir = Path(argv[argv.index("--resume" if resuming else "--run-dir") + 1])
    cfg = json.loads((run_dir / "config.json").read_text())
    name = cfg.get("name", "")
    steps = int((re.search(r"s(\\d+)", name) or [0, 5])[1])
    delay = float((re.search(r"d(\\d+(?:\\.\\d+)?)", name) or [0, "0.02"])[1])
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:  # torchrun: only rank 0 writes
        time.sleep(steps * delay)
        sys.exit(0)
    store.update_status(run_dir, state="running", trainer_pid=os.getpid())
    print("fake trainer starting", name, "resume" if resuming else "", flush=True)
    (run_dir / "worker_env.json").write_text(json.dumps({k: os.environ.get(k) for k in
        ("CUDA_VISIBLE_DEVICES", "WORLD_SIZE", "PYTHONPATH", "PYTHONUNBUFFERED", "NEWSCLF_MARK")}))
    if "hang" in name:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "child" in name:
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
        (run_dir / "child.pid").write_text(str(child.pid))
    writer = store.MetricsWriter(run_dir / "metrics.jsonl")
    for step in range(1, steps + 1):
        if store.stop_requested(run_dir) and "hang" not in name:
            store.update_status(run_dir, state="cancelled", reason="stopped on request", ended=time.time())
            sys.exit(0)
        time.sleep(delay)
        writer.write({"type": "step", "step": step, "total_steps": steps, "epoch": 1, "loss": 1.0 / step,
                      "lr": 1e-3, "samples_per_s": 100.0, "time": time.time(), "eta_s": (steps - step) * delay})
        if step == 2 and not resuming:
            if "lastdir" in name:
                (run_dir / "last").mkdir(exist_ok=True)
            if "crash" in name:
                raise RuntimeError("boom in step 2")
            if "oom" in name:
                raise MemoryError()
            if "dataerr" in name:
                class DataError(ValueError):
                    pass
                raise DataError("no documents left after filtering")
            if "fail" in name:
                try:
                    raise ValueError("bad thing")
                except ValueError as exc:
                    traceback.print_exc()
                    store.update_status(run_dir, state="failed", reason=f"ValueError: {exc}",
                                        error=traceback.format_exc(), ended=time.time())
                    sys.exit(1)
    writer.write({"type": "done", "val_acc": 0.5})
    store.write_json_atomic(run_dir / "results.json", {"model": cfg["model"], "val_acc": 0.5})
    store.update_status(run_dir, state="finished", ended=time.time())
''')


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def state_of(runs: Path, job_id: str) -> str:
    """The state as written on disk: reading it never schedules or reconciles."""
    return store.read_status(runs / job_id)["state"]


def wait_state(runs: Path, job_id: str, states, timeout: float = 20.0) -> dict:
    states = (states,) if isinstance(states, str) else tuple(states)
    wait_for(lambda: state_of(runs, job_id) in states, timeout, what=f"{job_id} to be {states} "
             f"(now {state_of(runs, job_id)})")
    return store.read_status(runs / job_id)


def wait_released(runs: Path, job_id: str, timeout: float = 20.0) -> dict:
    wait_for(lambda: store.read_status(runs / job_id).get("released"), timeout, what=f"{job_id} released")
    return store.read_status(runs / job_id)


def pid_gone(pid: int) -> bool:
    from newsclf.jobs.procs import proc_stat

    stat = proc_stat(pid)
    return stat is None or stat[0] in ("Z", "X")


def job_processes(runs: Path, job_id: str) -> list[dict]:
    """Identities (pid + start time) of the job's supervisor, worker and the fake's grandchild."""
    spec = store.read_json(runs / job_id / jobs.JOB_FILE, {}) or {}
    status = store.read_status(runs / job_id)
    idents = [(spec.get("launch") or {}).get("supervisor"), status.get("worker")]
    child = runs / job_id / "child.pid"
    if child.exists():
        idents.append(jobs.process_identity(int(child.read_text())))
    return [i for i in idents if i]


def job_pids(runs: Path, job_id: str) -> list[int]:
    return [i["pid"] for i in job_processes(runs, job_id)]


@pytest.fixture(scope="session")
def fake_trainer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fake_trainer") / "fake_trainer.py"
    path.write_text(FAKE_TRAINER)
    return path


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_trainer: Path):
    """An empty runs dir; jobs run the fake trainer on 1 CPU slot and see no GPU. Kills leftovers after."""
    monkeypatch.setenv(jobs.ENV_WORKER_CMD, json.dumps([sys.executable, str(fake_trainer)]))
    monkeypatch.setenv(jobs.ENV_JOB_KEY_FILE, str(tmp_path / "keys" / "job.key"))  # never the user's real key
    monkeypatch.setenv(jobs.ENV_GPUS, "")
    monkeypatch.setenv(jobs.ENV_CPU_SLOTS, "1")
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("NEWSCLF_RUNS_DIR", raising=False)
    root = tmp_path / "runs"
    yield root
    for job_dir in root.glob("*/job.json"):  # never leave processes behind, whatever the test did
        with contextlib.suppress(Exception):
            store.request_stop(job_dir.parent)
        for ident in job_processes(root, job_dir.parent.name):
            if jobs.process_alive(ident):  # start time checked: never a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(ident["pid"], signal.SIGKILL)


def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from newsclf import cli

    return cli.main(list(argv))

