"""Background jobs: the real subprocess path (supervisor + worker) with a fake trainer, offline, on CPU.

The fake trainer (written below into a temp dir) follows the trainer contract: status running with
its pid, step events in metrics.jsonl, STOP honoured between steps, finished/failed/cancelled.
Its behaviour comes from the run name: sN = N steps, dX = X s per step, fail / crash / oom /
dataerr (fail at step 2), hang (ignores STOP and SIGTERM), child (spawns a grandchild), gpu (records
CUDA_VISIBLE_DEVICES), lastdir (creates last/ before failing).
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from newsclf import jobs, store
from newsclf.config import ConfigError

pytestmark = pytest.mark.timeout(60)
PROJECT_ROOT = Path(__file__).resolve().parents[1]

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


# ---- helpers ------------------------------------------------------------------------------------
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
    return not jobs.process_alive({"pid": pid})


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


# ---- the subprocess path -------------------------------------------------------------------------
def test_import_pulls_neither_torch_nor_streamlit():
    code = ("import sys, newsclf.jobs, newsclf.commands.jobs; "
            "bad = [m for m in ('torch', 'streamlit') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT, timeout=30)


def test_job_runs_to_finished_through_a_subprocess(runs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("NEWSCLF_MARK", "submitted-env")
    monkeypatch.chdir(tmp_path)  # the worker must find newsclf from any cwd
    info = jobs.submit(["--name", "ok-s5", "--epochs", "2"], runs)
    assert info.state == "running" and info.queue_position is None
    wait_state(runs, info.id, "finished")
    status = wait_released(runs, info.id)
    assert status["exit_code"] == 0 and status["job"]["slot"] == "cpu"
    final = jobs.job_status(info.id, runs)
    assert final.state == "finished" and final.progress["percent"] == 100.0 and final.progress["step"] == 5
    assert final.model == "tfidf" and final.pid
    config = json.loads((runs / info.id / store.CONFIG).read_text())
    assert config["epochs"] == 2 and Path(config["data_home"]).is_absolute()
    env = json.loads((runs / info.id / "worker_env.json").read_text())
    assert env["PYTHONUNBUFFERED"] == "1" and str(PROJECT_ROOT) in env["PYTHONPATH"].split(os.pathsep)
    assert env["NEWSCLF_MARK"] == "submitted-env" and env["CUDA_VISIBLE_DEVICES"] == ""
    log = jobs.tail_log(info.id, 50, runs)
    assert "fake trainer starting ok-s5" in log and "worker exited with code 0" in log
    wait_for(lambda: not any(jobs.process_alive(p) for p in job_processes(runs, info.id)), what="job processes to exit")


def test_second_job_waits_for_the_only_slot_then_starts_by_itself(runs: Path):
    first = jobs.submit(["--name", "first-s20-d0.04"], runs)
    second = jobs.submit(["--name", "second-s3"], runs)
    assert first.state == "running"
    assert second.state == "queued" and second.queue_position == 1
    assert state_of(runs, second.id) == "queued"
    # Only raw file reads from here on: nobody calls schedule/list, the finishing job starts the next.
    done = wait_state(runs, first.id, "finished")
    assert state_of(runs, second.id) in ("queued", "running", "finished")
    later = wait_state(runs, second.id, "finished", timeout=30)
    assert later["started"] >= done["ended"]
    assert json.loads((runs / jobs.QUEUE_FILE).read_text())["queue"] == []


def test_two_cpu_slots_run_two_jobs_at_once(runs: Path):
    a = jobs.submit(["--name", "a-s30-d0.03"], runs, cpu_slots=2)
    b = jobs.submit(["--name", "b-s30-d0.03"], runs)
    c = jobs.submit(["--name", "c-s2"], runs)
    assert (a.state, b.state, c.state) == ("running", "running", "queued")
    assert json.loads((runs / jobs.QUEUE_FILE).read_text())["cpu_slots"] == 2
    for job in (a, b, c):
        wait_state(runs, job.id, "finished", timeout=30)


def test_cancel_a_queued_job(runs: Path):
    first = jobs.submit(["--name", "long-s400-d0.05"], runs)
    queued = jobs.submit(["--name", "never-s2"], runs)
    info = jobs.cancel(queued.id, runs)
    assert info.state == "cancelled" and info.reason == "cancelled while queued"
    assert queued.id not in json.loads((runs / jobs.QUEUE_FILE).read_text())["queue"]
    assert "launch" not in json.loads((runs / queued.id / jobs.JOB_FILE).read_text())
    assert jobs.job_status(first.id, runs).state == "running"
    jobs.cancel(first.id, runs, timeout=10, wait=True)
    assert state_of(runs, queued.id) == "cancelled" and not (runs / queued.id / store.LOG).exists()


def test_cancel_a_running_job_stops_it_gracefully(runs: Path):
    info = jobs.submit(["--name", "long-s400-d0.05"], runs)
    wait_for(lambda: jobs.read_progress(runs / info.id).get("step", 0) >= 2, what="two steps")
    done = jobs.cancel(info.id, runs, timeout=10, wait=True)
    assert done.state == "cancelled" and done.reason == "stopped on request"
    assert done.progress["step"] < 400
    wait_for(lambda: not any(jobs.process_alive(p) for p in job_processes(runs, info.id)), what="job processes to exit")


def test_cancel_kills_the_process_tree_of_a_worker_that_ignores_stop(runs: Path):
    info = jobs.submit(["--name", "hang-child-s400-d0.05"], runs)
    wait_for(lambda: (runs / info.id / "child.pid").exists() and jobs.read_progress(runs / info.id).get("step"),
             what="the hanging worker to start")
    procs = job_processes(runs, info.id)
    assert len(procs) == 3 and all(jobs.process_alive(p) for p in procs)
    done = jobs.cancel(info.id, runs, timeout=0.3, grace=0.3, wait=True)
    assert done.state == "cancelled" and "killed after the stop timeout" in done.reason
    wait_for(lambda: not any(jobs.process_alive(p) for p in procs), timeout=10,
             what="supervisor, worker and grandchild to die")


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


def test_a_worker_that_cannot_start_fails_and_the_queue_moves_on(runs: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 fake_trainer: Path):
    monkeypatch.setenv(jobs.ENV_WORKER_CMD, json.dumps(["/nonexistent/trainer"]))
    broken = jobs.submit(["--name", "broken-s2"], runs, start=False)
    monkeypatch.setenv(jobs.ENV_WORKER_CMD, json.dumps([sys.executable, str(fake_trainer)]))
    fine = jobs.submit(["--name", "fine-s2"], runs)
    status = wait_state(runs, broken.id, "failed")
    assert status["reason"].startswith("FileNotFoundError") and "/nonexistent/trainer" in status["reason"]
    wait_state(runs, fine.id, "finished")  # started by the broken job's supervisor, nobody listed


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


def test_pid_reuse_guard():
    me = jobs.process_identity(os.getpid())
    assert jobs.process_alive(me)
    assert not jobs.process_alive({**me, "start": me["start"] + 1})  # same pid, another process
    assert not jobs.process_alive({**me, "boot": "another-boot"})  # recorded before a reboot
    assert not jobs.process_alive(None) and not jobs.process_alive({"pid": 0})
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = jobs.process_identity(zombie.pid)
    wait_for(lambda: jobs._proc_stat(zombie.pid) is None or jobs._proc_stat(zombie.pid)[0] == "Z", what="exit")
    assert not jobs.process_alive(ident)  # a zombie is dead (and gets reaped)
    zombie.wait()


# ---- files that readers must survive -----------------------------------------------------------------
def test_progress_reader_tolerates_a_torn_last_line(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    metrics = run / store.METRICS

    def step(n: int) -> str:
        return json.dumps({"type": "step", "step": n, "total_steps": 10, "epoch": 1, "loss": 0.5, "lr": 1e-3,
                           "samples_per_s": 50.0, "time": 1.0, "eta_s": 10.0 - n})

    torn = step(3)
    metrics.write_text(step(1) + "\n" + "{not json}\n" + step(2) + "\n" + torn[:17])
    progress = jobs.read_progress(run)
    assert progress["step"] == 2 and progress["percent"] == 20.0 and progress["eta_s"] == 8.0
    with open(metrics, "a") as fh:
        fh.write(torn[17:] + "\n" + json.dumps({"type": "epoch", "epoch": 1, "val_acc": 0.7}) + "\n")
    progress = jobs.read_progress(run)
    assert progress["step"] == 3 and progress["last_epoch"]["val_acc"] == 0.7
    metrics.write_text(step(1) + "\n")  # a new, shorter file (e.g. a restarted run) is read from the start
    assert jobs.read_progress(run)["step"] == 1


def test_corrupted_status_files(runs: Path):
    done = jobs.submit(["--name", "done-s2"], runs)
    wait_state(runs, done.id, "finished")
    wait_for(lambda: not any(jobs.process_alive(p) for p in job_processes(runs, done.id)), what="supervisor exit")
    queued = jobs.submit(["--name", "queued-s2"], runs, start=False)
    died = jobs.submit(["--name", "died-s2"], runs, start=False)
    (runs / died.id / store.STATUS).write_text('{"state": "runn')  # torn, and no results.json
    spec = json.loads((runs / died.id / jobs.JOB_FILE).read_text())
    spec["launch"] = {"started": time.time(), "gpus": [], "supervisor": {"pid": 999_999_999, "start": 1}}
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


def test_corrupted_queue_file_is_rebuilt_from_the_statuses(runs: Path):
    ids = [jobs.submit(["--name", f"q{i}-s2"], runs, start=False).id for i in range(3)]
    (runs / jobs.QUEUE_FILE).write_text("[[[ not json")
    assert [i.queue_position for i in jobs.list_jobs(runs, reconcile=False)] == [None, None, None]
    jobs.schedule(runs)
    assert json.loads((runs / jobs.QUEUE_FILE).read_text())["queue"] == ids[1:]
    for job_id in ids:
        wait_state(runs, job_id, "finished", timeout=30)


SUBMITTER = textwrap.dedent('''
    import sys
    from newsclf import jobs
    runs, tag = sys.argv[1], sys.argv[2]
    for i in range(8):
        jobs.submit(["--name", f"{tag}{i}-s400-d0.05"], runs, start=False)
        jobs.list_jobs(runs, reconcile=False)
        jobs.schedule(runs, cpu_slots=1) if i == 7 else None
''')


def test_concurrent_submits_from_two_processes_lose_and_duplicate_nothing(runs: Path, tmp_path: Path):
    script = tmp_path / "submitter.py"
    script.write_text(SUBMITTER)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), str(runs), tag], env=env) for tag in ("a", "b")]
    assert [p.wait(timeout=40) for p in procs] == [0, 0]
    infos = jobs.list_jobs(runs, reconcile=False)
    assert len(infos) == 16 and len({i.id for i in infos}) == 16
    queue = json.loads((runs / jobs.QUEUE_FILE).read_text())["queue"]
    running = [i.id for i in infos if i.state != "queued"]
    assert len(running) == 1 and running[0] not in queue  # two schedulers, one slot: exactly one started
    assert sorted(queue + running) == sorted(i.id for i in infos)
    for tag in ("a", "b"):  # each submitter's jobs keep their FIFO order
        def numbers(ids):
            return [int(m.group(1)) for q in ids if (m := re.search(rf"-{tag}(\d)-s400", q))]

        assert numbers(queue) == sorted(numbers(queue)) and sorted(numbers(queue + running)) == list(range(8))
    for job_id in queue:  # don't run 15 jobs: empty the queue
        jobs.cancel(job_id, runs)
    assert jobs.cancel(running[0], runs, timeout=10, wait=True).state == "cancelled"
    assert all(i.state == "cancelled" for i in jobs.list_jobs(runs))


def test_invalid_config_is_refused_before_anything_is_queued(runs: Path, monkeypatch: pytest.MonkeyPatch):
    cases = [(["--model", "nope"], "model"), (["--epochs", "0"], "epochs"), (["--dropout", "2"], "dropout"),
             (["--bogus", "1"], "bogus"), ({"model": "bilstm", "lr": -1}, "lr")]
    for config, field in cases:
        with pytest.raises(ConfigError) as err:
            jobs.submit(config, runs)
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:
        jobs.submit(["--name", "x"], runs, gpus="0")
    assert err.value.field == "gpus"
    with pytest.raises(ConfigError) as err:
        jobs.submit(["--device", "cuda"], runs)
    assert err.value.field == "device"
    with pytest.raises(ConfigError) as err:
        jobs.submit(["--name", "x"], runs, cpu_slots=0)
    assert err.value.field == "cpu_slots"
    assert not runs.exists() or not any(p for p in runs.iterdir() if not p.name.startswith("."))


def test_gpu_slots_one_job_per_gpu(runs: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(jobs.ENV_GPUS, "0,1")
    a = jobs.submit(["--model", "bilstm", "--name", "a-s30-d0.03"], runs)
    b = jobs.submit(["--model", "bilstm", "--name", "b-s30-d0.03"], runs)
    c = jobs.submit(["--model", "bilstm", "--name", "c-s2"], runs)
    cpu = jobs.submit(["--model", "tfidf", "--name", "cpu-s2"], runs)  # tfidf takes a CPU slot
    assert (a.state, b.state, c.state, cpu.state) == ("running", "running", "queued", "running")
    assert sorted(a.gpus + b.gpus) == ["0", "1"] and a.slot == "gpu" and cpu.slot == "cpu"
    for job in (a, b, c, cpu):
        wait_state(runs, job.id, "finished", timeout=30)
    seen = {j.id: json.loads((runs / j.id / "worker_env.json").read_text())["CUDA_VISIBLE_DEVICES"]
            for j in (a, b, c, cpu)}
    assert seen[a.id] in ("0", "1") and seen[b.id] != seen[a.id] and seen[c.id] in ("0", "1") and seen[cpu.id] == ""
    with pytest.raises(ConfigError):
        jobs.submit(["--model", "bilstm"], runs, gpus="0,2")
    with pytest.raises(ConfigError):
        jobs.submit(["--model", "bilstm"], runs, nproc_per_node=3)


def test_worker_command_uses_torchrun_for_several_processes(tmp_path: Path):
    spec = {"worker_cmd": [sys.executable, "-m", "newsclf", "train"], "nproc_per_node": 2}
    cmd = jobs.build_worker_command(spec, tmp_path / "r")
    assert cmd == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "-m", "newsclf", "train", "--run-dir", str(tmp_path / "r")]
    cmd = jobs.build_worker_command({**spec, "worker_cmd": ["/bin/trainer"]}, tmp_path / "r")
    assert "--no-python" in cmd and cmd[-3:] == ["/bin/trainer", "--run-dir", str(tmp_path / "r")]
    single = jobs.build_worker_command({**spec, "nproc_per_node": 1, "resume": True}, tmp_path / "r")
    assert single == spec["worker_cmd"] + ["--resume", str(tmp_path / "r"), "--runs-dir", str(tmp_path)]


@pytest.mark.timeout(120)
def test_torchrun_job_on_cpu(runs: Path):
    """--nproc-per-node 2 on CPU: a real torchrun with two ranks of the fake trainer."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch not installed")
    info = jobs.submit(["--name", "ddp-s4"], runs, nproc_per_node=2)
    assert info.nproc_per_node == 2 and info.slot == "cpu"
    status = wait_state(runs, info.id, ("finished", "failed"), timeout=90)
    assert status["state"] == "finished", jobs.tail_log(info.id, 40, runs)
    assert json.loads((runs / info.id / "worker_env.json").read_text())["WORLD_SIZE"] == "2"
    assert "torch.distributed.run" in jobs.tail_log(info.id, 200, runs)


def test_follow_log_streams_until_the_job_ends(runs: Path):
    info = jobs.submit(["--name", "chatty-s10-d0.05"], runs)
    lines = list(jobs.follow_log(info.id, runs, lines=5, poll_s=0.05, timeout=30))
    text = "".join(lines)
    assert "fake trainer starting chatty" in text and "worker exited with code 0" in text
    assert state_of(runs, info.id) == "finished"
    assert jobs.tail_log(info.id, 1, runs).startswith("[newsclf.jobs] worker exited")


def test_resume_requeues_a_failed_run_with_a_last_checkpoint(runs: Path):
    no_last = jobs.submit(["--name", "fail-s5"], runs)
    wait_released(runs, no_last.id)
    with pytest.raises(jobs.JobError, match="last/"):
        jobs.resume(no_last.id, runs)
    info = jobs.submit(["--name", "fail-lastdir-s5"], runs)
    wait_state(runs, info.id, "failed")
    wait_released(runs, info.id)
    again = jobs.resume(info.id, runs)
    assert again.state in ("queued", "running")
    done = wait_state(runs, info.id, "finished")
    assert done["reason"] is None and done["job"]["attempt"] == 2
    assert "resume" in jobs.tail_log(info.id, 50, runs)
    with pytest.raises(jobs.JobError, match="finished"):
        jobs.resume(info.id, runs)


def test_unknown_and_traversing_ids_are_refused(runs: Path):
    jobs.submit(["--name", "x-s2"], runs, start=False)
    for bad in ("nope", "../etc", "/etc/passwd", ""):
        with pytest.raises(store.RunNotFoundError):
            jobs.job_status(bad, runs)
        with pytest.raises(store.RunNotFoundError):
            jobs.cancel(bad, runs)


# ---- the CLI ---------------------------------------------------------------------------------------
def _cli(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from newsclf import cli

    if "jobs" not in cli.GROUPS:
        monkeypatch.setattr(cli, "GROUPS", tuple(cli.GROUPS) + ("jobs",))
    return cli.main(list(argv))


def test_cli_submit_list_status_logs_cancel(runs: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    assert _cli(monkeypatch, "jobs", "submit", "--name", "cli-s400-d0.05", "--runs-dir", str(runs)) == 0
    job_id = capsys.readouterr().out.strip()
    assert (runs / job_id / jobs.JOB_FILE).is_file()
    assert _cli(monkeypatch, "jobs", "submit", "--name", "cli2-s2", "--runs-dir", str(runs)) == 0
    second = capsys.readouterr().out.strip()
    wait_for(lambda: jobs.read_progress(runs / job_id).get("step"), what="a step")

    assert _cli(monkeypatch, "jobs", "list", "--runs-dir", str(runs)) == 0
    out = capsys.readouterr().out
    assert job_id in out and "running" in out and "queued #1" in out
    assert _cli(monkeypatch, "jobs", "list", "--json", "--runs-dir", str(runs)) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {j["id"] for j in listed} == {job_id, second} and all("progress" in j for j in listed)
    assert _cli(monkeypatch, "jobs", "status", job_id, "--runs-dir", str(runs)) == 0
    assert "progress" in capsys.readouterr().out
    assert _cli(monkeypatch, "jobs", "logs", job_id, "-n", "5", "--runs-dir", str(runs)) == 0
    assert "fake trainer starting" in capsys.readouterr().out

    assert _cli(monkeypatch, "jobs", "cancel", second, "--runs-dir", str(runs)) == 0
    assert _cli(monkeypatch, "jobs", "cancel", job_id, "--wait", "--timeout", "10", "--runs-dir", str(runs)) == 0
    assert "cancelled" in capsys.readouterr().out
    assert _cli(monkeypatch, "jobs", "status", job_id, "--json", "--runs-dir", str(runs)) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "cancelled"
    assert _cli(monkeypatch, "jobs", "logs", job_id, "--follow", "--runs-dir", str(runs)) == 0
    assert "worker exited" in capsys.readouterr().out

    assert _cli(monkeypatch, "jobs", "submit", "--epochs", "0", "--runs-dir", str(runs)) == 2
    assert "epochs" in capsys.readouterr().err
    assert _cli(monkeypatch, "jobs", "status", "no-such-job", "--runs-dir", str(runs)) == 2
    assert "no run" in capsys.readouterr().err


# ---- the real trainer --------------------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(300)
def test_real_tfidf_job_reaches_finished(request: pytest.FixtureRequest, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    if importlib.util.find_spec("newsclf.commands.train") is None or importlib.util.find_spec("newsclf.runner") is None:
        pytest.skip("the trainer (newsclf.commands.train) is not there yet")
    try:
        data_home = request.getfixturevalue("fixture_data_home")
    except pytest.FixtureLookupError:
        pytest.skip("fixture_data_home is not defined in tests/conftest.py")
    monkeypatch.delenv(jobs.ENV_WORKER_CMD, raising=False)
    monkeypatch.setenv(jobs.ENV_GPUS, "")
    monkeypatch.setenv(jobs.ENV_CPU_SLOTS, "1")
    runs = tmp_path / "runs"
    info = jobs.submit(["--model", "tfidf", "--data-home", str(data_home), "--max-features", "2000"], runs)
    status = wait_state(runs, info.id, ("finished", "failed", "cancelled"), timeout=240)
    assert status["state"] == "finished", (status.get("reason"), jobs.tail_log(info.id, 60, runs))
    wait_released(runs, info.id)
    results = store.read_json(runs / info.id / store.RESULTS)
    assert isinstance(results, dict) and 0.0 <= results["test_acc"] <= 1.0
    assert jobs.job_status(info.id, runs).state == "finished"
