"""Run preparation: one naming rule, checks before a run directory exists, untrusted stored data homes."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from newsclf import store
from newsclf.cli import main
from newsclf.config import RunConfig
from newsclf.prepare import prepare_run, run_name


def _cli(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("values, expected", [
    (dict(model="tfidf"), "tfidf"),
    (dict(model="bilstm", name="mine"), "mine"),
    (dict(model="transformer", pretrained="/srv/models/minilm-l6/", strategy="freeze"), "minilm-l6-freeze"),
])
def test_one_naming_rule(values, expected, tmp_path):
    cfg = RunConfig(**values).resolved()
    assert run_name(cfg) == expected


@pytest.mark.parametrize("flag, value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--grad-clip", "nan"), ("--alpha", "nan"), ("--alpha", "inf"),
    ("--head-lr", "nan"), ("--ngram-max", "99999999999999999999"), ("--max-features", "10000000000"),
    ("--embed-dim", "1000000"), ("--hidden-size", "1000000"), ("--num-layers", "500"), ("--batch-size", "10000000"),
    ("--epochs", "1000000"), ("--seed", "-1"), ("--seed", str(2**40)), ("--limit-train", "1"),
    ("--warmup", "-0.5"), ("--dropout", "inf"),
])
def test_out_of_range_and_non_finite_options_are_refused_before_a_run_dir(flag, value, tmp_path, capsys,
                                                                          fixture_data_home):
    model = "transformer" if flag == "--head-lr" else ("tfidf" if flag in ("--alpha", "--ngram-max", "--max-features")
                                                       else "bilstm")
    runs = tmp_path / "runs"
    code, _, err = _cli(["train", "--model", model, flag, value, "--runs-dir", str(runs),
                         "--data-home", str(fixture_data_home)], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert flag.lstrip("-").replace("-", "_") in err
    assert not runs.exists() or not any(runs.iterdir())


def test_glove_that_is_not_glove_is_refused_before_a_run_dir(tmp_path, capsys, fixture_data_home):
    bogus = tmp_path / "passwd"
    bogus.write_text("root:x:0:0:root:/root:/bin/bash\n")
    runs = tmp_path / "runs"
    code, _, err = _cli(["train", "--model", "bilstm", "--glove", str(bogus), "--runs-dir", str(runs),
                         "--data-home", str(fixture_data_home)], capsys)
    assert code == 2 and "glove" in err and len(err.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())


def test_pretrained_folder_without_a_model_is_refused_before_a_run_dir(tmp_path, capsys, fixture_data_home):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    runs = tmp_path / "runs"
    code, _, err = _cli(["train", "--model", "transformer", "--pretrained", str(empty), "--runs-dir", str(runs),
                         "--data-home", str(fixture_data_home)], capsys)
    assert code == 2 and "pretrained" in err and len(err.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())


class _Boom:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED-by-pkz",))


def test_a_runs_stored_data_home_is_never_loaded_from(tiny_runs, fixture_data_home, tmp_path, capsys, monkeypatch):
    """A crafted 20news-bydate_py3.pkz next to a run (its config naming that folder as data_home) never runs."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    run = runs / tiny_runs["tfidf"].name
    shutil.copytree(tiny_runs["tfidf"], run)
    evil_home = run / "evil_home"
    evil_home.mkdir()
    (evil_home / "20news-bydate_py3.pkz").write_bytes(pickle.dumps(_Boom()))
    config = json.loads((run / store.CONFIG).read_text())
    config["data_home"] = str(evil_home)
    (run / store.CONFIG).write_text(json.dumps(config))
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    code, _, err = _cli(["evaluate", run.name, "--runs-dir", str(runs)], capsys)
    assert code == 0, err
    assert not (tmp_path / "PWNED-by-pkz").exists()


def test_resume_uses_the_callers_data_home(tmp_path, fixture_data_home):
    run = store.create_run_dir(tmp_path, "x")
    cfg = RunConfig(model="bilstm", data_home="/somewhere/else").resolved()
    store.write_json_atomic(run / store.CONFIG, cfg.to_dict())
    (run / store.LAST).mkdir()
    (run / store.LAST / "state.json").write_text("{}")
    prepared = prepare_run({}, tmp_path, resume=run.name, data_home=str(fixture_data_home))
    assert prepared.cfg.data_home == str(fixture_data_home) and prepared.resume


def test_garbage_config_is_one_line(tmp_path, capsys):
    run = store.create_run_dir(tmp_path, "garbage")
    (run / store.CONFIG).write_text('{"model": "bilstm", "epochs": "many"}')
    (run / store.LAST).mkdir()
    (run / store.LAST / "state.json").write_text("{}")
    code, _, err = _cli(["train", "--resume", run.name, "--runs-dir", str(tmp_path)], capsys)
    assert code == 2 and "config.json is invalid" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("values", [dict(model="tfidf"), dict(model="bilstm", name="my-run"),
                                    dict(model="transformer", strategy="hybrid", epochs=3)])
def test_cli_and_job_queue_name_runs_alike(values, tmp_path, fixture_data_home, tiny_model_dirs, monkeypatch):
    from newsclf import jobs

    monkeypatch.setenv("NEWSCLF_JOB_KEY_FILE", str(tmp_path / "key" / "job.key"))
    monkeypatch.setenv("NEWSCLF_GPUS", "")
    if values["model"] == "transformer":
        values = {**values, "pretrained": str(tiny_model_dirs["distilbert"]), "max_len": 32}
    given = {**values, "data_home": str(fixture_data_home)}
    cli_dir = prepare_run(given, tmp_path / "cli").run_dir
    job = jobs.submit(RunConfig(**given), tmp_path / "jobs", start=False)
    name = lambda run_id: run_id.split("-", 3)[3]  # noqa: E731 - drop the yyyymmdd-hhmmss-mmm stamp
    assert name(cli_dir.name) == name(job.id) == run_name(RunConfig(**given).resolved())
