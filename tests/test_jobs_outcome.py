"""Terminal states and failure reasons (newsclf.jobs.outcome), also when nothing is left to write them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsclf import jobs, store
from newsclf.jobs import spec as job_spec
from newsclf.jobs.outcome import sign_trainer
from tests.helpers.jobs import fake_trainer, job_pids, job_processes, pid_gone, runs, state_of, wait_for, wait_released, wait_state  # noqa: F401

pytestmark = pytest.mark.timeout(60)


def test_classify_failure_texts():
    classify = jobs.classify_failure
    assert classify(1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB") == "out of memory"
    assert classify(1, "Traceback ...\nnewsclf.data.DataError: corpus not found") == "bad data"
    assert classify(-9, "step 3") == "worker died (killed by SIGKILL)"
    torchrun = ("Traceback (most recent call last):\nValueError: x\n"
                "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: \n"
                "  exitcode  : -9 (pid: 123)\n  error_file: <N/A>\n")
    assert classify(1, torchrun) == "worker died (killed by SIGKILL)"
    assert classify(1, "Traceback:\nKeyError: 'x'\nfoo.ChildFailedError: y\n") == "KeyError: 'x'"
    assert classify(2, "error: run-dir: /x has no readable config.json\n") == "run-dir: /x has no readable config.json"
    assert classify(None, "") .startswith("worker died (process gone")
    assert classify(3, "") == "worker died (exit code 3)"


def test_sigkill_of_the_worker_marks_the_job_failed(runs: Path):
    info = jobs.submit(["--name", "victim-s400-d0.05"], runs)
    wait_for(lambda: jobs.read_progress(runs / info.id).get("step", 0) >= 2, what="two steps")
    worker = store.read_status(runs / info.id)["trainer_pid"]
    os.kill(worker, signal.SIGKILL)
    failed = wait_for(lambda: (j := jobs.job_status(info.id, runs)).state == "failed" and j, what="failed")
    assert failed.reason == "worker died (killed by SIGKILL)" and failed.exit_code == -9
    assert (runs / info.id / store.METRICS).stat().st_size > 0 and failed.progress["step"] >= 2
    assert "fake trainer starting" in jobs.tail_log(info.id, 20, runs)


def test_dead_supervisor_and_worker_are_detected_on_the_next_status(runs: Path):
    """A machine reboot or SIGKILL of the whole job: nothing is left to write the final state."""
    info = jobs.submit(["--name", "victim-s400-d0.05"], runs)
    waiting = jobs.submit(["--name", "next-s2"], runs)
    wait_for(lambda: jobs.read_progress(runs / info.id).get("step", 0) >= 1, what="a step")
    supervisor, worker = job_pids(runs, info.id)
    os.kill(supervisor, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: pid_gone(supervisor) and pid_gone(worker), what="both processes to die")
    assert state_of(runs, info.id) == "running"  # nobody has looked yet
    status = jobs.job_status(info.id, runs)
    assert status.state == "failed" and status.reason.startswith("worker died")
    assert (runs / info.id / store.METRICS).exists() and (runs / info.id / store.LOG).exists()
    # the same reconcile freed the slot, so the queued job started
    wait_state(runs, waiting.id, "finished", timeout=20)


def test_failure_reasons_from_real_workers(runs: Path):
    names = {"crash-s5": "RuntimeError: boom in step 2", "oom-s5": "out of memory",
             "dataerr-s5": "bad data", "fail-s5": "ValueError: bad thing"}
    submitted = {jobs.submit(["--name", name], runs, cpu_slots=4).id: want for name, want in names.items()}
    for job_id, want in submitted.items():
        status = wait_state(runs, job_id, "failed")
        status = wait_released(runs, job_id)
        assert status["reason"] == want, (job_id, status["reason"])
        assert "Traceback (most recent call last)" in status["error"]
        assert "[newsclf.jobs]" not in status["error"]


def test_corrupted_status_files(runs: Path):
    done = jobs.submit(["--name", "done-s2"], runs)
    wait_state(runs, done.id, "finished")
    wait_for(lambda: not any(jobs.process_alive(p) for p in job_processes(runs, done.id)), what="supervisor exit")
    queued = jobs.submit(["--name", "queued-s2"], runs, start=False)
    died = jobs.submit(["--name", "died-s2"], runs, start=False)
    (runs / died.id / store.STATUS).write_text('{"state": "runn')  # torn, and no results.json
    spec = json.loads((runs / died.id / jobs.JOB_FILE).read_text())
    spec["launch"] = {"started": time.time(), "gpus": [], "supervisor": {"pid": 999_999_999, "start": 1}}
    job_spec.record_launch(died.id, spec)  # launched by us once (then its supervisor died)
    job_spec.sign_launch(spec)
    (runs / died.id / jobs.JOB_FILE).write_text(json.dumps(spec))
    queue = json.loads((runs / jobs.QUEUE_FILE).read_text())
    queue["queue"].remove(died.id)
    (runs / jobs.QUEUE_FILE).write_text(json.dumps(queue))
    (runs / done.id / store.STATUS).write_bytes(b"\x00\xff garbage")
    (runs / queued.id / store.STATUS).write_text("")

    infos = {i.id: i for i in jobs.list_jobs(runs)}  # must not raise; repairs what it can
    assert infos[done.id].state == "finished" and "restored" in infos[done.id].reason
    assert infos[died.id].state == "failed" and infos[died.id].reason.startswith("worker died")
    assert infos[queued.id].state in ("queued", "running", "finished")
    wait_state(runs, queued.id, "finished")



def test_a_direct_run_whose_trainer_died_is_marked_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """`python -m newsclf train` (no job) killed by the OOM killer must not stay "running" forever."""
    from newsclf import cli

    runs = tmp_path / "runs"
    me = jobs.process_identity(os.getpid())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_ident = jobs.process_identity(dead.pid)
    dead.wait()
    cases = {"20990101-000000-000-oom": dead_ident,  # the process is gone
             "20990101-000000-001-reused": {**me, "start": me["start"] + 1},  # pid reused by someone else
             "20990101-000000-002-alive": me,  # still training: left alone
             "20990101-000000-003-noident": None}  # an old run without the field: left alone
    for run_id, ident in cases.items():
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / store.CONFIG).write_text(json.dumps({"model": "tfidf"}))
        status = {"state": "running", "trainer_pid": (ident or {}).get("pid", 1)}
        if ident:
            status.update(trainer=ident, trainer_sig=sign_trainer(run_id, ident))
        (runs / run_id / store.STATUS).write_text(json.dumps(status))
    (runs / "20990101-000000-000-oom" / store.LOG).write_text("epoch 1\nKilled\n")
    assert cli.main(["runs", "list", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "oom" in out and out.count("failed") == 2
    states = {run_id: store.read_status(runs / run_id) for run_id in cases}
    for run_id in ("20990101-000000-000-oom", "20990101-000000-001-reused"):
        assert states[run_id]["state"] == "failed" and states[run_id]["reason"] == jobs.TRAINER_DIED
        assert states[run_id]["ended"]
    assert states["20990101-000000-002-alive"]["state"] == "running"
    assert states["20990101-000000-003-noident"]["state"] == "running"
    assert jobs.reconcile_direct_runs(runs) == []  # idempotent
    jobs.list_jobs(runs)  # the dashboard's path reconciles too (nothing left to do here)


def test_a_run_of_another_machine_is_not_judged_from_this_one(tmp_path: Path):
    """A runs dir shared with a teammate's machine: its live runs are not marked dead from here (their pid
    means nothing in this /proc); only a long silence (no file of the run changed for an hour) ends one."""
    runs = tmp_path / "runs"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = {**jobs.process_identity(dead.pid), "host": "teammates-gpu-box", "boot": "another-kernel"}
    dead.wait()
    now = time.time()
    cases = {"20990101-000000-000-live": now - 60, "20990101-000000-001-silent": now - 2 * 3600,
             "20990101-000000-002-evaluating": now - 2 * 3600}  # status old, but metrics.jsonl still growing
    for run_id, updated in cases.items():
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / store.CONFIG).write_text(json.dumps({"model": "tfidf"}))
        (runs / run_id / store.STATUS).write_text(json.dumps({"state": "running", "trainer": ident, "updated": updated}))
        os.utime(runs / run_id / store.STATUS, (updated, updated))
    (runs / "20990101-000000-002-evaluating" / store.METRICS).write_text('{"type": "eval"}\n')
    assert jobs.reconcile_direct_runs(runs) == ["20990101-000000-001-silent"]
    assert store.read_status(runs / "20990101-000000-000-live")["state"] == "running"
    silent = store.read_status(runs / "20990101-000000-001-silent")
    assert silent["state"] == "failed" and "no sign of life from teammates-gpu-box for 2.0 h" in silent["error"]
    assert store.read_status(runs / "20990101-000000-002-evaluating")["state"] == "running"
    # the same process recorded on this machine is dead, and is marked at once
    local = {**ident, "host": jobs.process_identity(os.getpid())["host"]}
    (runs / "20990101-000000-000-live" / store.STATUS).write_text(json.dumps(
        {"state": "running", "trainer": local, "trainer_sig": sign_trainer("20990101-000000-000-live", local),
         "updated": now}))
    assert jobs.reconcile_direct_runs(runs) == ["20990101-000000-000-live"]
