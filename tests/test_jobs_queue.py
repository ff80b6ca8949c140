"""The queue (newsclf.jobs.queue and submit): slots, FIFO, concurrent submitters, refusals."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from newsclf import jobs, store
from newsclf.config import ConfigError
from tests.helpers.jobs import PROJECT_ROOT, fake_trainer, runs, state_of, wait_state  # noqa: F401

pytestmark = pytest.mark.timeout(60)


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


def test_unknown_and_traversing_ids_are_refused(runs: Path):
    jobs.submit(["--name", "x-s2"], runs, start=False)
    for bad in ("nope", "../etc", "/etc/passwd", ""):
        with pytest.raises(store.RunNotFoundError):
            jobs.job_status(bad, runs)
        with pytest.raises(store.RunNotFoundError):
            jobs.cancel(bad, runs)



def test_a_job_launched_by_another_machine_is_neither_our_slot_nor_ours_to_finalize(runs: Path):
    from newsclf.jobs import queue
    from newsclf.jobs import spec as job_spec

    job = jobs.submit(["--name", "theirs-s2"], runs, start=False)
    run_dir = runs / job.id
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    theirs = {**jobs.process_identity(gone.pid), "host": "teammates-gpu-box", "boot": "another-kernel"}
    gone.wait()
    spec = json.loads((run_dir / jobs.JOB_FILE).read_text())
    spec["launch"] = {"supervisor": theirs, "gpus": ["0"], "started": 1.0}
    job_spec.sign_launch(spec)  # the same key on both machines (a shared home)
    (run_dir / store.STATUS).write_text(json.dumps({"state": "running"}))
    status = {"state": "running"}
    assert queue._holds_slot(run_dir, spec, status) is False
    assert store.read_status(run_dir)["state"] == "running"  # not finalized as dead
    ours = {**theirs, "host": jobs.process_identity(os.getpid())["host"]}  # the same, recorded here: dead
    spec["launch"]["supervisor"] = ours
    job_spec.sign_launch(spec)
    assert queue._holds_slot(run_dir, spec, {"state": "running"}) is False
    assert store.read_status(run_dir)["state"] == "failed"
