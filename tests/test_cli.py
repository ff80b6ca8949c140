"""`python -m newsclf train | runs list | evaluate | predict`: output, exit codes, bad input refused
with one line naming the field, and nothing on disk lost."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf import store
from newsclf.cli import main

REPO = Path(__file__).resolve().parent.parent


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """main() in-process; argparse errors exit through SystemExit, the rest return a code."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def runs_copy(tiny_runs: dict, tmp_path: Path) -> dict:
    """A private copy of the tfidf and bilstm runs (the session's runs stay read-only)."""
    root = tmp_path / "runs"
    root.mkdir()
    out = {"runs_dir": root}
    for kind in ("tfidf", "bilstm"):
        out[kind] = root / tiny_runs[kind].name
        shutil.copytree(tiny_runs[kind], out[kind])
    return out


# ---- train: bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("argv, field", [
    (["--model", "bilstm", "--epochs", "0"], "epochs"),
    (["--model", "bilstm", "--epochs", "-3"], "epochs"),
    (["--model", "bilstm", "--batch-size", "0"], "batch_size"),
    (["--model", "bilstm", "--lr", "0"], "lr"),
    (["--model", "bilstm", "--lr", "-0.001"], "lr"),
    (["--model", "bilstm", "--max-len", "100000"], "max_len"),
    (["--model", "bilstm", "--glove", "/no/such/glove.6B.300d.txt"], "glove"),
    (["--model", "bilstm", "--limit-train", "-5"], "limit_train"),
    (["--model", "gpt9"], "--model"),
    (["--model", "bilstm", "--device", "tpu"], "--device"),
])
def test_train_refuses_bad_config_without_touching_disk(argv, field, runs_copy: dict, fixture_data_home: Path, capsys):
    before = _snapshot(runs_copy["runs_dir"])
    code, out, err = _cli(["train", *argv, "--runs-dir", str(runs_copy["runs_dir"]),
                           "--data-home", str(fixture_data_home)], capsys)
    assert code == 2
    assert field in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""
    assert _snapshot(runs_copy["runs_dir"]) == before  # no run dir created, nothing changed


def test_train_without_the_corpus_says_how_to_import(tmp_path: Path, capsys):
    code, _, err = _cli(["train", "--model", "tfidf", "--runs-dir", str(tmp_path / "runs"),
                         "--data-home", str(tmp_path / "empty-home")], capsys)
    assert code == 2 and "import" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.integration
def test_train_subprocess_prints_the_run_dir_and_no_bar_noise(tmp_path: Path, fixture_data_home: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "newsclf", "train", "--model", "tfidf", "--runs-dir",
                           str(tmp_path), "--data-home", str(fixture_data_home), "--name", "cli-tfidf"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path and run_dir.name.endswith("-cli-tfidf")
    assert store.read_status(run_dir)["state"] == "finished"
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr  # no progress bar when not on a terminal
    assert "val acc" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "newsclf", "train", "--model", "bilstm", "--epochs", "0",
                          "--runs-dir", str(tmp_path)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: epochs:")
    assert sorted(p.name for p in tmp_path.iterdir()) == [run_dir.name]


# ---- runs list / evaluate -----------------------------------------------------------------------
def test_runs_list_table_and_json(tiny_runs: dict, capsys):
    code, out, _ = _cli(["runs", "list", "--runs-dir", str(tiny_runs["runs_dir"]), "--json"], capsys)
    assert code == 0
    rows = {r["run_id"]: r for r in json.loads(out)}
    for kind in ("tfidf", "bilstm"):
        row = rows[tiny_runs[kind].name]
        results = json.loads((tiny_runs[kind] / store.RESULTS).read_text())
        assert row["model"] == kind and row["state"] == "finished"
        assert row["test_acc"] == results["test_acc"] and row["params"] == results["params"]
    code, out, _ = _cli(["runs", "list", "--runs-dir", str(tiny_runs["runs_dir"])], capsys)
    assert code == 0 and tiny_runs["tfidf"].name in out and "finished" in out
    code, out, _ = _cli(["runs", "list", "--runs-dir", str(tiny_runs["runs_dir"] / "nothing-here")], capsys)
    assert code == 0 and "no runs yet" in out


def test_evaluate_rescores_a_run_and_keeps_its_training_facts(runs_copy: dict, fixture_data_home, capsys):
    run = runs_copy["bilstm"]
    before = json.loads((run / store.RESULTS).read_text())
    code, out, _ = _cli(["evaluate", run.name, "--runs-dir", str(runs_copy["runs_dir"]), "--json",
                         "--data-home", str(fixture_data_home)], capsys)
    assert code == 0
    shown = json.loads(out)
    after = json.loads((run / store.RESULTS).read_text())
    for key in ("val_acc", "test_acc", "f1_macro", "params", "trainable_params", "train_seconds", "best_epoch"):
        assert shown[key] == pytest.approx(before[key]) and after[key] == pytest.approx(before[key])


@pytest.mark.parametrize("run", ["no-such-run", "../tiny", "/etc", ".."])
def test_evaluate_and_predict_refuse_unknown_or_outside_runs(run: str, runs_copy: dict, capsys):
    before = _snapshot(runs_copy["runs_dir"])
    for argv in (["evaluate", run], ["predict", run, "--text", "hello world"]):
        code, out, err = _cli([*argv, "--runs-dir", str(runs_copy["runs_dir"])], capsys)
        assert code == 2 and err.startswith("error: run:") and out == ""
    assert _snapshot(runs_copy["runs_dir"]) == before


# ---- predict ------------------------------------------------------------------------------------
def test_predict_several_runs_json_and_text(tiny_runs: dict, tmp_path: Path, capsys):
    runs_dir = str(tiny_runs["runs_dir"])
    text = "the goalie and the puck: nhl hockey playoff penalty"
    code, out, _ = _cli(["predict", tiny_runs["tfidf"].name, tiny_runs["bilstm"].name, "--text", text,
                         "--runs-dir", runs_dir, "--json", "--top-k", "3"], capsys)
    assert code == 0
    items = json.loads(out)
    assert [i["model"] for i in items] == ["tfidf", "bilstm"]
    for item in items:
        probs = [t["prob"] for t in item["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    assert items[0]["top"][0]["label"] == "rec.sport.hockey"
    path = tmp_path / "post.txt"
    path.write_text(text + " café", encoding="utf-8")
    code, out, _ = _cli(["predict", tiny_runs["tfidf"].name, "--file", str(path), "--runs-dir", runs_dir], capsys)
    assert code == 0 and tiny_runs["tfidf"].name in out and "rec.sport.hockey" in out and "%" in out


def test_predict_calibrated_uses_the_stored_temperature(runs_copy: dict, capsys):
    from newsclf import calibration

    run, runs_dir = runs_copy["bilstm"], str(runs_copy["runs_dir"])
    argv = ["predict", run.name, "--text", "the goalie and the puck", "--runs-dir", runs_dir, "--json"]
    code, out, err = _cli([*argv, "--calibrated"], capsys)
    assert code == 2 and out == "" and err.startswith("error: run ") and f"newsclf calibrate {run.name}" in err
    temperature = calibration.calibrate_run(run).temperature
    code, out, _ = _cli(argv, capsys)
    plain = json.loads(out)[0]
    code, out, _ = _cli([*argv, "--calibrated", "--top-k", "20"], capsys)
    scaled = json.loads(out)[0]
    assert code == 0 and scaled["calibrated"] and not plain["calibrated"]
    assert scaled["top"][0]["label"] == plain["top"][0]["label"]  # argmax unchanged
    assert sum(t["prob"] for t in scaled["top"]) == pytest.approx(1.0, abs=1e-5)
    if abs(temperature - 1.0) > 1e-3:
        assert scaled["top"][0]["prob"] != pytest.approx(plain["top"][0]["prob"], abs=1e-6)


@pytest.mark.parametrize("content, field, message", [
    ("", "text", "empty"),
    ("   \n\t  ", "text", "empty"),
    ("x" * 3_000_000, "text", "characters"),
    (b"\xff\xfe not utf-8 \xe9t\xe9", "file", "UTF-8"),
    (b"   \n ", "file", "empty"),
    ("y" * 3_000_000, "file", "characters"),
    (None, "file", "does not exist"),
], ids=["empty", "whitespace", "3MB-text", "not-utf8-file", "blank-file", "3MB-file", "missing-file"])
def test_predict_refuses_bad_text(content, field, message, runs_copy: dict, tmp_path: Path, capsys):
    before = _snapshot(runs_copy["runs_dir"])
    argv = ["predict", runs_copy["tfidf"].name, "--runs-dir", str(runs_copy["runs_dir"])]
    if field == "text":
        argv += ["--text", content]
    else:
        path = tmp_path / "input.txt"
        if content is not None:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        argv += ["--file", str(path)]
    code, out, err = _cli(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {field}:") and message in err and len(err.strip().splitlines()) == 1
    assert _snapshot(runs_copy["runs_dir"]) == before


def test_predict_top_k_must_be_positive(tiny_runs: dict, capsys):
    code, _, err = _cli(["predict", tiny_runs["tfidf"].name, "--text", "hi there", "--top-k", "0",
                         "--runs-dir", str(tiny_runs["runs_dir"])], capsys)
    assert code == 2 and "top-k" in err


def test_progress_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch):
    import io

    from newsclf.commands.train import _progress_printer

    class Pipe(io.StringIO):
        def isatty(self) -> bool:
            return False

    class Terminal(Pipe):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Pipe())
    assert _progress_printer() is None  # logs get the epoch lines from the logger, no bar
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    logger = logging.getLogger("newsclf")
    monkeypatch.setattr(logger, "handlers", [])  # handlers left by earlier runs in this process
    from newsclf.runner import _StderrHandler

    console = _StderrHandler()  # what runner.run attaches before the first event (follows sys.stderr)
    logger.addHandler(console)
    try:
        on_event = _progress_printer()
        on_event({"type": "start", "total_steps": 4, "epochs": 2})
        assert console.stream is not term  # log lines now print above the bar
        for step in range(1, 5):
            on_event({"type": "step", "step": step, "total_steps": 4, "epoch": 1 + (step > 2), "loss": 1.0 / step})
            if step % 2 == 0:
                logger.warning("epoch %d/2: val acc %.4f", step // 2, 0.25 * step)
                on_event({"type": "epoch", "epoch": step // 2, "val_acc": 0.25 * step})
        on_event({"type": "done", "val_acc": 1.0, "test_acc": 0.9})
        assert console.stream is term
    finally:
        logger.removeHandler(console)
    shown = term.getvalue()
    lines = shown.replace("\r", "\n").split("\n")
    assert "4/4" in shown
    assert "epoch 1/2: val acc 0.5000" in lines and "epoch 2/2: val acc 1.0000" in lines  # whole lines, not inside the bar
    assert shown.count("val acc") == 2  # no second copy of the epoch line


def test_explain_refuses_absurd_step_counts(tiny_runs: dict, capsys):
    code, _, err = _cli(["explain", tiny_runs["bilstm"].name, "--text", "space shuttle launch", "--steps", "100000000",
                         "--runs-dir", str(tiny_runs["runs_dir"])], capsys)
    assert code == 2 and "steps" in err and len(err.strip().splitlines()) == 1


def test_an_unwritable_runs_dir_is_one_line(tmp_path: Path, fixture_data_home, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the runs dir should be")
    code, _, err = _cli(["train", "--model", "tfidf", "--runs-dir", str(blocker / "runs"),
                         "--data-home", str(fixture_data_home)], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_transformer_run_tells_plain_transformers_its_max_len(tiny_runs: dict):
    config = json.loads((tiny_runs["transformer"] / store.BEST / "tokenizer_config.json").read_text())
    trained = json.loads((tiny_runs["transformer"] / store.CONFIG).read_text())["max_len"]
    assert config["model_max_length"] == trained == 32
