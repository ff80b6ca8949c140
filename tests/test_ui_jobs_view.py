"""The live job panel: evaluation progress after training, and a readable log (no ANSI, wrapped)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.app import app_env  # noqa: F401

pytestmark = pytest.mark.app


def test_evaluate_run_reports_progress_val_then_test(tiny_runs, fixture_data_home, tmp_path):
    from newsclf.evaluate import evaluate_run
    from newsclf.jobs import read_progress

    run = shutil.copytree(tiny_runs["tfidf"], tmp_path / Path(tiny_runs["tfidf"]).name)
    events: list[dict] = []
    results = evaluate_run(run, data_home=str(fixture_data_home), on_progress=events.append)
    assert {e["type"] for e in events} == {"eval"}
    splits = [e["split"] for e in events]
    assert splits[0] == "val" and "test" in splits and splits.index("test") > max(i for i, s in enumerate(splits) if s == "val")
    val = [e for e in events if e["split"] == "val"]
    test = [e for e in events if e["split"] == "test"]
    assert val[0]["done"] == 0 and val[-1]["done"] == val[-1]["total"] == results["n_val"]
    assert test[-1]["done"] == results["n_test"] and test[-1]["overall_done"] == results["n_val"] + results["n_test"]
    assert all(e["overall_total"] == results["n_val"] + results["n_test"] for e in events)
    assert test[-1]["eta_s"] == 0.0
    # the runner's sink appends these to metrics.jsonl: read_progress reports the evaluation stage
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps(test[0]) + "\n")
    progress = read_progress(run)
    assert progress["stage"] == "evaluating" and progress["eval"]["split"] == "test"
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "done", "test_acc": 1.0, "val_acc": 1.0}) + "\n")
    assert read_progress(run)["stage"] == "done" and "eval" not in read_progress(run)


def test_clean_log_strips_ansi_and_control_characters():
    from newsclf.ui.jobs_view import clean_log

    raw = "\x1b[32mINFO\x1b[0m start\n 10%|#   \r 50%|###  \x1b[K\nbell\x07 \x1b]0;title\x07end\u202e"
    out = clean_log(raw)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\u202e" not in out
    assert out.splitlines() == ["INFO start", " 50%|###  ", "bell end[U+202E]"]


def _panel(run_dir: str) -> None:
    from pathlib import Path

    from newsclf import jobs
    from newsclf.ui import jobs_view

    path = Path(run_dir)
    info = jobs.JobInfo(id=path.name, path=path, state="running", model="tfidf", progress=jobs.read_progress(path))
    jobs_view._render_job(info, expanded=True)


def test_live_panel_shows_evaluation_not_a_stuck_bar_and_a_clean_log(app_env):
    run = next(p for p in app_env["runs_dir"].iterdir() if p.name.endswith("-tfidf"))
    lines = [json.dumps(e) for e in (
        {"type": "step", "step": 1, "total_steps": 1, "epoch": 1, "loss": 0.5, "eta_s": 0.0},
        {"type": "eval", "split": "test", "done": 40, "total": 110, "overall_done": 84, "overall_total": 154,
         "eta_s": 12.0})]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    long = "x" * 400
    (run / "train.log").write_text(f"\x1b[1;31mERROR\x1b[0m something\n{long}\n")
    at = AppTest.from_function(_panel, args=(str(run),), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    body = " ".join(str(getattr(m, "value", "")) for m in at.metric)
    assert "evaluating" in body and "0m 12s" in body
    bar = at.get("progress")[0].proto
    assert "evaluating test: 40 of 110 documents" in bar.text and bar.value == int(100 * 84 / 154)
    code = at.code[0]
    assert "\x1b" not in code.value and "ERROR something" in code.value and long in code.value
    assert code.proto.wrap_lines


def test_cli_progress_bar_switches_to_evaluation(monkeypatch):
    import io
    import sys

    from newsclf.commands import train

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    on_event = train._progress_printer()
    on_event({"type": "start", "total_steps": 2})
    on_event({"type": "step", "step": 2, "epoch": 1, "loss": 0.5})
    on_event({"type": "eval", "split": "val", "done": 10, "total": 20, "overall_done": 10, "overall_total": 50,
              "eta_s": 3.0})
    on_event({"type": "eval", "split": "test", "done": 30, "total": 30, "overall_done": 50, "overall_total": 50,
              "eta_s": 0.0})
    on_event({"type": "done"})
    out = err.getvalue()
    assert "evaluating" in out and "50/50" in out and "split=test" in out
