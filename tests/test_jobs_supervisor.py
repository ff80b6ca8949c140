"""The supervisor (newsclf.jobs.supervisor): running, cancelling and resuming real worker subprocesses."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from newsclf import jobs, store
from tests.helpers.jobs import PROJECT_ROOT, fake_trainer, job_processes, runs, wait_for, wait_released, wait_state  # noqa: F401

pytestmark = pytest.mark.timeout(60)


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


def test_a_worker_that_cannot_start_fails_and_the_queue_moves_on(runs: Path, monkeypatch: pytest.MonkeyPatch):
    # The worker command comes from the launching process's environment (never from job.json), so
    # the job queued behind the broken one is started by the broken job's supervisor, nobody listing.
    monkeypatch.setenv(jobs.ENV_WORKER_CMD, json.dumps(["/nonexistent/trainer"]))
    broken = jobs.submit(["--name", "broken-s2"], runs)
    behind = jobs.submit(["--name", "behind-s2"], runs)
    assert behind.state == "queued"
    first = wait_state(runs, broken.id, "failed")
    assert first["reason"].startswith("FileNotFoundError") and "/nonexistent/trainer" in first["reason"]
    second = wait_state(runs, behind.id, "failed")
    assert "/nonexistent/trainer" in second["reason"] and second["started"] >= first["ended"]


def test_worker_command_uses_torchrun_for_several_processes(tmp_path: Path):
    prefix = [sys.executable, "-m", "newsclf", "train"]
    cmd = jobs.build_worker_command({"nproc_per_node": 2}, tmp_path / "r", prefix)
    assert cmd == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   "-m", "newsclf", "train", "--run-dir", str(tmp_path / "r")]
    cmd = jobs.build_worker_command({"nproc_per_node": 2}, tmp_path / "r", ["/bin/trainer"])
    assert "--no-python" in cmd and cmd[-3:] == ["/bin/trainer", "--run-dir", str(tmp_path / "r")]
    single = jobs.build_worker_command({"nproc_per_node": 1, "resume": True}, tmp_path / "r", prefix)
    assert single == prefix + ["--resume", str(tmp_path / "r"), "--runs-dir", str(tmp_path)]


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

