"""No stranger can block the queue (issue 21, class 3): only jobs this installation signed hold a slot;
a liveness record without a verifiable start time is not alive; a replayed signed job never runs twice.

Each case is a folder someone with write access to a shared runs dir can plant, generated over the
ways a slot could be claimed (unsigned, forged signatures, borrowed live identities, GPU slots,
terminal-but-unreleased states); then: a real job still runs, `jobs cancel` refuses in one line and
writes nothing into the stranger's folder, `runs delete` removes it.
"""
from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from newsclf import jobs, store
from newsclf.cli import main
from newsclf.jobs import spec as job_spec
from newsclf.jobs.outcome import sign_trainer
from tests.helpers.jobs import fake_trainer, runs, state_of, wait_for, wait_state  # noqa: F401

pytestmark = pytest.mark.timeout(90)
STRANGER = "20990101-000000-000-stranger"


def _me() -> dict:
    return jobs.process_identity(os.getpid())  # alive, verifiable: the pytest process


def _init() -> dict:
    return jobs.process_identity(1)  # pid 1's real start time and boot id, readable by anyone


SLOT_CLAIMS = {
    "pid-1-no-start": lambda: ({"launch": {"supervisor": {"pid": 1}}}, {}),
    "pid-1-full-identity": lambda: ({"launch": {"supervisor": _init()}}, {}),
    "live-identity-unsigned": lambda: ({"launch": {"supervisor": _me()}}, {}),
    "forged-signatures": lambda: ({"launch": {"supervisor": _me()}, "signature": "0" * 64, "launch_sig": "f" * 64,
                                   "attempt": 1, "nonce": "0" * 32}, {}),
    "live-worker-forged-sig": lambda: ({"launch": {"supervisor": {"pid": 999_999_999, "start": 1}}},
                                       {"worker": {**_me(), "pgid": 1}, "worker_sig": "0" * 64}),
    "gpu-slot": lambda: ({"slot": "gpu", "gpu_count": 1, "gpus": ["0"],
                          "launch": {"supervisor": _me(), "gpus": ["0"]}}, {}),
    "finished-unreleased": lambda: ({"launch": {"supervisor": _me()}}, {"state": "finished"}),
    "cancel-pending": lambda: ({"launch": {"supervisor": _me()}},
                               {"cancel": {"requested": time.time(), "deadline": time.time() + 9e8}}),
    "string-pid": lambda: ({"launch": {"supervisor": {"pid": "1", "start": "0"}}}, {}),
    "bool-pid": lambda: ({"launch": {"supervisor": {"pid": True, "start": True}}}, {}),
}


def _plant(runs: Path, spec_extra: dict, status_extra: dict) -> Path:
    run = runs / STRANGER
    run.mkdir(parents=True)
    (run / store.CONFIG).write_text(json.dumps({"model": "tfidf", "name": "stranger-s500-d1"}))
    spec = {"id": STRANGER, "submitted": time.time() - 60, "slot": "cpu", "gpu_count": 0, "gpus": None,
            "nproc_per_node": 1, "torchrun": False, "resume": False, **spec_extra}
    (run / jobs.JOB_FILE).write_text(json.dumps(spec))
    (run / store.STATUS).write_text(json.dumps({"state": "running", "started": time.time(), **status_extra}))
    return run


def _snapshot(run: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


@pytest.mark.parametrize("claim", sorted(SLOT_CLAIMS))
def test_a_stranger_never_holds_a_slot(runs: Path, claim: str, monkeypatch: pytest.MonkeyPatch, capsys):
    spec_extra, status_extra = SLOT_CLAIMS[claim]()
    if spec_extra.get("slot") == "gpu":
        monkeypatch.setenv(jobs.ENV_GPUS, "0")
    stranger = _plant(runs, spec_extra, status_extra)
    before = _snapshot(stranger)
    gpu = ["--device", "cuda"] if spec_extra.get("slot") == "gpu" else []
    ours = jobs.submit(["--name", "ours-s2", *gpu], runs)  # the only CPU (or GPU) slot is free for it
    wait_state(runs, ours.id, "finished")
    assert _snapshot(stranger) == before  # never finalized, signalled or rewritten by our scheduler
    # cancel refuses in one line and writes nothing; delete removes it
    code = main(["jobs", "cancel", STRANGER, "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    if status_extra.get("state") == "finished":
        assert code == 0
    else:
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert "not submitted by this installation" in err
    assert _snapshot(stranger) == before and not (stranger / store.STOP).exists()
    assert main(["runs", "delete", STRANGER, "--yes", "--runs-dir", str(runs)]) == 0, capsys.readouterr().err
    assert not stranger.exists()


def _one_finished_job(runs: Path) -> tuple[str, bytes]:
    job = jobs.submit(["--name", "replay-s2"], runs)
    wait_state(runs, job.id, "finished")
    wait_for(lambda: store.read_status(runs / job.id).get("released"), what="slot released")
    return job.id, (runs / job.id / jobs.JOB_FILE).read_bytes()


def _runs_of(runs: Path, job_id: str) -> int:
    return (runs / job_id / store.LOG).read_text().count("fake trainer starting")


def _requeue(runs: Path, job_id: str) -> None:
    """What a stranger can do to a finished signed job: its status back to queued, back into the queue."""
    (runs / job_id / store.STATUS).write_text(json.dumps({"state": "queued", "created": time.time()}))
    queue = json.loads((runs / jobs.QUEUE_FILE).read_text())
    (runs / jobs.QUEUE_FILE).write_text(json.dumps({**queue, "queue": [job_id]}))


ROLLBACKS = {
    "status-only": lambda spec: spec,
    "launch-record-removed": lambda spec: {k: v for k, v in spec.items() if k not in ("launch", "launch_sig")},
    "launch-attempt-edited": lambda spec: {**spec, "launch": {**spec["launch"], "attempt": 7}},
    "attempt-bumped": lambda spec: {**spec, "attempt": 2},
    "nonce-changed": lambda spec: {**spec, "nonce": "1" * 32},
}


@pytest.mark.parametrize("rollback", sorted(ROLLBACKS))
def test_a_replayed_signed_job_never_runs_twice(runs: Path, rollback: str):
    job_id, spec_bytes = _one_finished_job(runs)
    assert _runs_of(runs, job_id) == 1
    spec = ROLLBACKS[rollback](json.loads(spec_bytes))
    (runs / job_id / jobs.JOB_FILE).write_text(json.dumps(spec))
    _requeue(runs, job_id)
    jobs.schedule(runs)
    info = jobs.job_status(job_id, runs)
    time.sleep(0.5)
    assert _runs_of(runs, job_id) == 1, "a replayed job ran again"
    assert info.state in ("failed", "queued")
    assert "launched once already" in (info.reason or "") or info.reason == jobs.UNTRUSTED
    # a proper resume is a new attempt (new nonce, new signature) and runs
    (runs / job_id / store.LAST).mkdir(exist_ok=True)
    if info.state == "failed":
        jobs.resume(job_id, runs)
        wait_state(runs, job_id, "finished")
        assert _runs_of(runs, job_id) == 2


@pytest.mark.parametrize("ident", [{"pid": 1}, {"pid": os.getpid()}, {"pid": os.getpid(), "start": None},
                                   {"pid": os.getpid(), "start": "12"}, {"pid": os.getpid(), "start": True},
                                   {"pid": True, "start": 0}, {"pid": 1.0, "start": 0}])
def test_a_liveness_record_without_a_verifiable_start_time_is_not_alive(ident):
    assert not jobs.process_alive(ident)
    assert jobs.process_alive(jobs.process_identity(os.getpid()))


@pytest.mark.parametrize("signed_record", [False, True])
def test_an_unsigned_direct_run_claiming_a_live_trainer_does_not_block_delete(tmp_path: Path, signed_record, capsys):
    runs = tmp_path / "runs"
    run = runs / "20990101-000000-000-direct"
    run.mkdir(parents=True)
    (run / store.CONFIG).write_text(json.dumps({"model": "tfidf"}))
    me = jobs.process_identity(os.getpid())
    sig = sign_trainer(run.name, me) if signed_record else "0" * 64
    (run / store.STATUS).write_text(json.dumps({"state": "running", "trainer": me, "trainer_sig": sig}))
    code = main(["runs", "delete", run.name, "--yes", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    if signed_record:  # our own live trainer: refused, kept
        assert code == 2 and "running" in err and run.is_dir()
    else:
        assert code == 0 and not run.exists()


# ---- the key file (classes 6 and 9) ---------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o666, 0o644, 0o640, 0o604, 0o620, 0o602])
def test_a_key_file_others_can_read_or_write_is_refused(runs: Path, mode: int, capsys):
    jobs.submit(["--name", "k-s2"], runs, start=False)
    key = job_spec.key_path()
    key.chmod(mode)
    before = key.read_bytes()
    code = main(["jobs", "submit", "--name", "k2-s2", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "chmod 600" in err and len(err.strip().splitlines()) == 1
    assert key.read_bytes() == before and stat.S_IMODE(key.stat().st_mode) == mode  # never "fixed" silently
    assert jobs.schedule(runs) == []  # nothing verifies with a refused key


@pytest.mark.parametrize("kind", ["fifo", "dir", "link-to-other", "dangling-link"])
def test_a_key_file_that_is_not_a_regular_file_is_refused_without_hanging(runs: Path, kind: str, tmp_path: Path,
                                                                            capsys):
    key = job_spec.key_path()
    key.parent.mkdir(parents=True, exist_ok=True)
    other = tmp_path / "other.key"
    other.write_text("x" * 64)
    other.chmod(0o600)
    {"fifo": lambda: os.mkfifo(key), "dir": lambda: key.mkdir(), "link-to-other": lambda: key.symlink_to(other),
     "dangling-link": lambda: key.symlink_to(tmp_path / "missing")}[kind]()
    start = time.monotonic()
    code = main(["jobs", "submit", "--name", "k3-s2", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert time.monotonic() - start < 20
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert not any(runs.glob("*k3-s2")) if runs.exists() else True
