"""A runs dir is untrusted input: crafted job folders never run anything, symlinks are never followed."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from newsclf import jobs, store
from newsclf.config import ConfigError
from newsclf.jobs import spec as job_spec
from tests.helpers.jobs import _cli, fake_trainer, runs, state_of, wait_state  # noqa: F401

pytestmark = pytest.mark.timeout(60)
PAYLOAD = ["/bin/sh", "-c", "touch PWNED; touch /tmp/newsclf-PWNED-$PPID"]


def _craft(runs: Path, job_id: str, cwd: Path, **spec_extra) -> Path:
    """What an attacker with write access to a shared runs dir can put there."""
    run = runs / job_id
    run.mkdir(parents=True)
    (run / store.CONFIG).write_text(json.dumps({"model": "tfidf", "name": "evil-s2"}))
    spec = {"id": job_id, "submitted": time.time(), "slot": "cpu", "gpu_count": 0, "gpus": None,
            "nproc_per_node": 1, "torchrun": False, "resume": False, "attempt": 1, "worker_cmd": PAYLOAD,
            "cwd": str(cwd), "env": {"PATH": "/tmp/evil", "PYTHONPATH": "/tmp/evil"}, **spec_extra}
    (run / jobs.JOB_FILE).write_text(json.dumps(spec))
    (run / store.STATUS).write_text(json.dumps({"state": "queued", "created": time.time()}))
    queue = store.read_json(runs / jobs.QUEUE_FILE, {}) or {}
    queue.setdefault("queue", []).append(job_id)
    (runs / jobs.QUEUE_FILE).write_text(json.dumps(queue))
    return run


def test_a_crafted_queued_job_never_runs(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    evil_cwd = tmp_path / "evil_cwd"
    evil_cwd.mkdir()
    runs.mkdir()
    unsigned = _craft(runs, "20990101-000000-000-evil", evil_cwd)
    forged = _craft(runs, "20990101-000000-001-forged", evil_cwd, signature="0" * 64)
    jobs.schedule(runs)
    infos = {i.id: i for i in jobs.list_jobs(runs)}
    jobs.job_status(unsigned.name, runs)
    time.sleep(1.0)  # a launched payload would have run by now
    for where in (evil_cwd, tmp_path, runs, unsigned, forged, jobs.PROJECT_ROOT):
        assert not (where / "PWNED").exists(), where
    for run in (unsigned, forged):
        assert state_of(runs, run.name) == "queued" and "launch" not in json.loads((run / jobs.JOB_FILE).read_text())
        assert not (run / store.LOG).exists()
        assert infos[run.name].reason == jobs.UNTRUSTED
    assert json.loads((runs / jobs.QUEUE_FILE).read_text())["queue"] == [unsigned.name, forged.name]  # left alone


def test_a_signed_job_changed_after_submit_is_not_launched(runs: Path):
    a = jobs.submit(["--name", "a-s2"], runs, start=False)
    b = jobs.submit(["--name", "b-s2"], runs, start=False)
    c = jobs.submit(["--name", "c-s2"], runs, start=False)
    config = json.loads((runs / a.id / store.CONFIG).read_text())
    (runs / a.id / store.CONFIG).write_text(json.dumps({**config, "epochs": 7}))  # config changed
    spec = json.loads((runs / b.id / jobs.JOB_FILE).read_text())
    (runs / b.id / jobs.JOB_FILE).write_text(json.dumps({**spec, "nproc_per_node": 2}))  # plan changed
    jobs.schedule(runs)
    wait_state(runs, c.id, "finished")  # the intact job behind them runs
    for job in (a, b):
        assert state_of(runs, job.id) == "queued" and jobs.job_status(job.id, runs).reason == jobs.UNTRUSTED
    with pytest.raises(jobs.JobError, match="not submitted by this installation"):
        jobs.resume(a.id, runs)


def test_a_job_signed_with_another_key_is_not_ours(runs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    job = jobs.submit(["--name", "other-s2"], runs, start=False)
    monkeypatch.setenv(jobs.ENV_JOB_KEY_FILE, str(tmp_path / "another.key"))
    assert jobs.schedule(runs) == [] and state_of(runs, job.id) == "queued"
    assert (tmp_path / "another.key").exists() is False  # verifying never creates a key


def test_the_key_is_private_and_outside_the_runs_dir(runs: Path, monkeypatch: pytest.MonkeyPatch):
    jobs.submit(["--name", "k-s2"], runs, start=False)
    key = job_spec.key_path()
    assert key.is_file() and (key.stat().st_mode & 0o777) == 0o600 and runs not in key.parents
    monkeypatch.setenv(jobs.ENV_JOB_KEY_FILE, str(runs / "job.key"))
    with pytest.raises(ConfigError, match="outside the runs dir"):
        jobs.submit(["--name", "k2-s2"], runs, start=False)


@pytest.mark.parametrize("bad", [{"gpus": ["0;rm -rf /"]}, {"gpus": "0"}, {"nproc_per_node": 0},
                                 {"nproc_per_node": 10_000}, {"nproc_per_node": "2"}, {"slot": "tpu"},
                                 {"gpu_count": -1}, {"resume": "yes"}, {"attempt": "x"}, {"attempt": 0},
                                 {"attempt": 1.5}, {"attempt": True}, {"attempt": 10**9}, {"nonce": None},
                                 {"nonce": "abc"}, {"nonce": "Z" * 32}])
def test_the_resource_plan_read_back_is_validated(bad: dict):
    plan = {"slot": "gpu", "gpu_count": 1, "gpus": ["0"], "nproc_per_node": 1, "resume": False, "attempt": 1,
            "nonce": "0" * 32}
    assert job_spec.validate_plan(plan) == plan
    with pytest.raises(jobs.UntrustedJobError):
        job_spec.validate_plan({**plan, **bad})


# ---- symlinks --------------------------------------------------------------------------------------
def test_symlinked_run_files_are_refused(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    job = jobs.submit(["--name", "link-s2"], runs, start=False)
    run = runs / job.id
    secret = tmp_path / "secret.txt"
    secret.write_text('{"state": "finished", "secret": "root:x:0:0"}\n')
    (run / store.LOG).symlink_to(secret)
    with pytest.raises(store.UnsafeRunFileError, match="symlink"):
        jobs.tail_log(job.id, 5, runs)
    with pytest.raises(store.UnsafeRunFileError):
        next(jobs.follow_log(job.id, runs, timeout=1))
    assert _cli(monkeypatch, "jobs", "logs", job.id, "--runs-dir", str(runs)) == 2
    out = capsys.readouterr()
    assert "root:x" not in out.out and out.err.startswith("error: ") and out.err.count("\n") == 1

    (run / store.METRICS).symlink_to(secret)
    assert jobs.read_progress(run) == {}
    (run / store.STATUS).unlink()
    (run / store.STATUS).symlink_to(secret)
    info = jobs.job_status(job.id, runs, reconcile=False)
    assert info.state == "unknown" and "symlink" in info.reason
    os.mkfifo(run / "fifo")
    with pytest.raises(store.UnsafeRunFileError, match="not a regular file"):
        store.open_inside(run, "fifo")  # would block a reader forever
    assert secret.read_text().startswith('{"state": "finished"')  # nothing was written through a link
