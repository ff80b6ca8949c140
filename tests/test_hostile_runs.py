"""A run directory is untrusted input: damaged, hostile or linked run files give one line, exit 2, never a
traceback, never a file read outside the runs dir, never a wrong state in `runs list`. Every CLI command."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from newsclf import store
from newsclf.cli import main
from tests.helpers.hostile import DAMAGE, NUMBERS

KINDS = ("tfidf", "bilstm", "transformer")


@pytest.fixture()
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "secret.json").write_text(json.dumps(["SECRET"] * 20))
    (out / "x").write_bytes(b"SECRET")
    return out


def _commands(run_id: str, runs: Path) -> list[list[str]]:
    r = ["--runs-dir", str(runs)]
    return [["runs", "list", *r], ["runs", "list", "--json", *r], ["runs", "tag", run_id, "t", *r],
            ["predict", run_id, "--text", "the space shuttle launch", *r],
            ["predict", run_id, "--text", "the space shuttle launch", "--calibrated", *r],
            ["explain", run_id, "--text", "the space shuttle launch", *r],
            ["jobs", "list", *r], ["jobs", "list", "--json", *r], ["jobs", "status", run_id, *r],
            ["jobs", "status", run_id, "--json", *r], ["jobs", "logs", run_id, *r], ["study", "status", *r],
            ["report", run_id, "--out", str(runs.parent / "report"), "--force", "--n-boot", "1000", *r],
            ["calibrate", run_id, *r], ["evaluate", run_id, *r]]  # last: these two may repair the run


# every damage on every kind; the numbers-and-shapes damages (class 8) each on one kind, in turn
CASES = [(kind, name) for name in sorted(DAMAGE) for kind in KINDS] + \
    [(KINDS[i % len(KINDS)], name) for i, name in enumerate(sorted(NUMBERS))]


@pytest.mark.parametrize("kind,damage", CASES)
def test_every_command_survives_a_damaged_run(kind, damage, tiny_runs, fixture_data_home, outside, tmp_path,
                                              capsys, monkeypatch):
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    monkeypatch.setenv("NEWSCLF_JOB_KEY_FILE", str(tmp_path / "key" / "job.key"))
    runs = tmp_path / "runs"
    run = runs / tiny_runs[kind].name
    shutil.copytree(tiny_runs[kind], run)
    {**DAMAGE, **NUMBERS}[damage](run, outside)
    partner = runs / tiny_runs["tfidf" if kind != "tfidf" else "bilstm"].name
    shutil.copytree(tiny_runs["tfidf" if kind != "tfidf" else "bilstm"], partner)
    ensemble = ["ensemble", run.name, partner.name, "--name", "ens", "--runs-dir", str(runs)]
    for argv in [*_commands(run.name, runs), ensemble]:
        code = main(argv)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, (argv, err)
        assert "SECRET" not in out + err, (argv, "read a file outside the runs dir")
        assert code in (0, 2), (argv, code, err)
        if code == 2:
            assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (argv, err)
    listed = {r.run_id: r.state for r in store.list_runs(runs)}
    # an unsigned claim of a live trainer is left as it is (judged after an hour of silence), never trusted
    allowed = ("finished", "unknown", "damaged") + (("running",) if "running" in damage else ())
    assert listed.get(run.name, "finished") in allowed
    assert main(["runs", "delete", run.name, "--yes", "--runs-dir", str(runs)]) == 0, capsys.readouterr().err


def test_a_dead_direct_trainer_is_reported_failed(tmp_path: Path, capsys):
    """`python -m newsclf train` killed by the OOM killer: `runs list` must not say running forever."""
    from newsclf.jobs import process_identity
    from newsclf.jobs.outcome import sign_trainer

    runs = tmp_path / "runs"
    run = store.create_run_dir(runs, "oomed")
    (run / store.CONFIG).write_text(json.dumps({"model": "tfidf"}))
    ident = process_identity(os.getpid())
    ident["start"] = ident.get("start", 0) + 12345  # same pid, another start time: that process is gone
    store.update_status(run, state="running", trainer_pid=ident["pid"], trainer=ident, started=time.time(),
                        trainer_sig=sign_trainer(run.name, ident))
    assert main(["runs", "list", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "running" not in out
    assert "trainer died" in store.read_status(run)["reason"]
