"""Reading jobs (newsclf.jobs.progress) and the `jobs` CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsclf import jobs, store
from tests.helpers.jobs import _cli, fake_trainer, runs, state_of, wait_for  # noqa: F401

pytestmark = pytest.mark.timeout(60)


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


def test_follow_log_streams_until_the_job_ends(runs: Path):
    info = jobs.submit(["--name", "chatty-s10-d0.05"], runs)
    lines = list(jobs.follow_log(info.id, runs, lines=5, poll_s=0.05, timeout=30))
    text = "".join(lines)
    assert "fake trainer starting chatty" in text and "worker exited with code 0" in text
    assert state_of(runs, info.id) == "finished"
    assert jobs.tail_log(info.id, 1, runs).startswith("[newsclf.jobs] worker exited")


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

