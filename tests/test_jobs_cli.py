"""The `jobs` CLI at its edges: argument ranges, closed pipes, read-only runs dirs."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf import jobs, store
from tests.helpers.jobs import PROJECT_ROOT, _cli, fake_trainer, runs  # noqa: F401

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("argv", [
    ["logs", "X", "-n", "-5"], ["logs", "X", "-n", "0"], ["logs", "X", "-n", "many"],
    ["cancel", "X", "--timeout", "nan"], ["cancel", "X", "--timeout", "inf"], ["cancel", "X", "--timeout", "-1"],
    ["submit", "--nproc-per-node", "0"], ["submit", "--nproc-per-node", "100000"],
    ["submit", "--cpu-slots", "-2"], ["submit", "--cpu-slots", "nan"],
])
def test_out_of_range_arguments_are_refused_in_one_line(argv, runs: Path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _cli(pytest.MonkeyPatch(), "jobs", *argv, "--runs-dir", str(runs))
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not runs.exists()


def test_library_refuses_nan_cancel_timeout(runs: Path):
    job = jobs.submit(["--name", "t-s2"], runs, start=False)
    with pytest.raises(ValueError, match="timeout"):
        jobs.cancel(job.id, runs, timeout=float("nan"))
    assert store.read_status(runs / job.id)["state"] == "queued"


def test_a_closed_stdout_pipe_is_not_a_traceback(tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1",
           jobs.ENV_JOB_KEY_FILE: str(tmp_path / "job.key")}
    proc = subprocess.Popen([sys.executable, "-m", "newsclf", "jobs", "list", "--runs-dir", str(tmp_path / "runs")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    proc.stdout.close()  # like `| head` that has already exited
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_jobs_list_works_on_a_read_only_runs_dir(runs: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    job = jobs.submit(["--name", "ro-s2"], runs, start=False)
    (runs / jobs.QUEUE_LOCK).unlink()
    os.chmod(runs, 0o555)
    try:
        if os.geteuid() == 0:  # root ignores the mode: make writes fail as they would for anyone else
            def refuse(*_a, **_k):
                raise PermissionError(errno.EACCES, "Permission denied")

            monkeypatch.setattr(os, "access", lambda *_a, **_k: True)  # the lock attempt itself must cope
            monkeypatch.setattr(store, "file_lock", refuse)
            monkeypatch.setattr(store, "write_json_atomic", refuse)
        assert _cli(monkeypatch, "jobs", "list", "--runs-dir", str(runs)) == 0
        assert job.id in capsys.readouterr().out
        assert [i.id for i in jobs.list_jobs(runs)] == [job.id]
        assert _cli(monkeypatch, "runs", "list", "--runs-dir", str(runs)) == 0
    finally:
        os.chmod(runs, 0o755)
