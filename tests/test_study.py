"""newsclf.study: the grid queued as jobs (not started), the record, the once-only ensemble, the exact
binomial interval and the table beside the published numbers; the `study` CLI."""
from __future__ import annotations

import json
import os
import shutil

from pathlib import Path

import pandas as pd
import pytest

from newsclf import store
from newsclf.config import PRESETS, ConfigError, RunConfig
from newsclf.study import (GRID, NOT_GIVEN, PUBLISHED, StudyEntry, StudyRecord, binomial_ci, list_records,
                           published_frame, published_gap, queue_study, read_record, reconcile_study, study_state,
                           study_table, write_record)
from tests.helpers.jobs import fake_trainer, runs  # noqa: F401


# ---- the exact interval ------------------------------------------------------------------------------
def test_binomial_ci_matches_clopper_pearson():
    low, high = binomial_ci(5, 10)
    assert low == pytest.approx(0.18709, abs=1e-4) and high == pytest.approx(0.81291, abs=1e-4)
    assert binomial_ci(0, 10) == (0.0, pytest.approx(0.30850, abs=1e-4))
    assert binomial_ci(10, 10)[1] == 1.0
    with pytest.raises(ValueError):
        binomial_ci(11, 10)


def test_published_gap_inside_and_outside():
    # 7,532 test docs at 74.00 %: the interval is about +-1 point wide
    near = published_gap(0.7400, 7532, 0.7406)
    far = published_gap(0.7000, 7532, 0.7477)
    assert not near["outside"] and near["low"] < 0.7406 < near["high"]
    assert far["outside"] and far["gap_points"] == pytest.approx(-4.77)


# ---- the published table, cell by cell ------------------------------------------------------------------
# The study's text as known: (model, strategy) -> (test acc %, macro-F1 %, train s, ms/doc, parameters);
# None = the study gives no figure. 74.06 is DistilBERT's FULL fine-tune, not BERT-base hybrid's.
STUDY_TEXT = {
    ("BiLSTM", None): (62.90, None, None, None, None),
    ("DistilBERT", "freeze"): (None, None, None, None, None),
    ("DistilBERT", "hybrid"): (73.88, None, 735, 44.1, None),  # the headline row; strategy inferred
    ("DistilBERT", "full"): (74.06, None, None, None, None),
    ("BERT-base", "freeze"): (None, None, None, None, None),
    ("BERT-base", "hybrid"): (74.77, None, 1337, 88.3, None),
    ("BERT-base", "full"): (74.17, None, None, None, None),
}


def test_published_table_holds_every_cell_to_the_study():
    assert {(p.model, p.strategy) for p in PUBLISHED} == set(STUDY_TEXT) and len(PUBLISHED) == len(STUDY_TEXT)
    for pub in PUBLISHED:
        cells = (pub.test_acc, pub.macro_f1, pub.train_seconds, pub.inference_ms, pub.params)
        assert cells == STUDY_TEXT[(pub.model, pub.strategy)], pub.label
        assert pub.preset in PRESETS and PRESETS[pub.preset].get("strategy") == pub.strategy
        assert any(g == pub.model and p == pub.preset for g, p, _ in GRID)
    assert [p.label for p in PUBLISHED if p.headline] == ["BiLSTM + attention (GloVe)", "DistilBERT hybrid",
                                                          "BERT-base hybrid"]
    assert [p.label for p in PUBLISHED if not p.strategy_stated] == ["DistilBERT hybrid"]
    frame = published_frame().set_index(["model", "strategy"])
    assert frame.loc[("BERT-base", "hybrid"), "test acc %"] == 74.77
    assert frame.loc[("DistilBERT", "full"), "test acc %"] == 74.06
    assert (frame["macro-F1 %"] == NOT_GIVEN).all() and (frame["parameters"] == NOT_GIVEN).all()
    for model in ("DistilBERT", "BERT-base"):
        assert (frame.loc[(model, "freeze")][["test acc %", "train s", "ms/doc"]] == NOT_GIVEN).all()
    assert frame.loc[("DistilBERT", "hybrid"), "strategy source"].startswith("inferred")
    assert frame.loc[("BERT-base", "hybrid"), "strategy source"] == "stated"
    assert frame.loc[("DistilBERT", "freeze"), "strategy source"] == "no figure given"


@pytest.fixture(scope="module")
def study_models(tmp_path_factory):
    """Tiny DistilBERT and BERT folders that take the grid's 512 tokens (local folders work offline)."""
    from tests.helpers.tiny_models import make_tiny_bert, make_tiny_distilbert

    root = tmp_path_factory.mktemp("study_models")
    return str(make_tiny_distilbert(root / "small", max_len=512)), str(make_tiny_bert(root / "large", max_len=512))


# ---- queueing --------------------------------------------------------------------------------------------
def test_queue_submits_every_grid_config_without_starting(runs, study_models):  # noqa: F811
    small, large = study_models
    dry = queue_study(runs, small, large, dry_run=True)
    assert len(dry.entries) == len(GRID) and not dry.job_ids and not list_records(runs)
    record = queue_study(runs, small, large, start=False)
    assert len(record.job_ids) == len(GRID)
    states = {store.read_status(runs / j)["state"] for j in record.job_ids}
    assert states == {"queued"}  # start=False: nothing launched
    pretrained = [store.read_json(runs / e.job / store.CONFIG).get("pretrained") for e in record.entries]
    assert pretrained.count(small) == 3 and pretrained.count(large) == 3
    again = read_record(runs, record.id)
    assert again is not None and again.job_ids == record.job_ids
    assert [r.id for r in list_records(runs)] == [record.id]
    assert study_state(runs, again) == "pending"
    assert reconcile_study(runs)[0].ensemble is None  # jobs not terminal: nothing built


def test_unknown_pretrained_queues_nothing(runs, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError):
        queue_study(runs, str(tmp_path / "no-such-model"), str(tmp_path / "nor-this"), start=False)
    assert not runs.exists() or not any(runs.iterdir())


def test_record_is_not_read_through_a_link(tmp_path):
    record = StudyRecord("abc", 1.0, "s", "l", [StudyEntry("TF-IDF", "x", {}, "job1")])
    real = write_record(tmp_path / "elsewhere", record)
    (tmp_path / "runs").mkdir()
    os.symlink(real, tmp_path / "runs" / real.name)
    assert read_record(tmp_path / "elsewhere", "abc").job_ids == ["job1"]
    assert read_record(tmp_path / "runs", "abc") is None and list_records(tmp_path / "runs") == []


# ---- reconcile: the ensemble, once ---------------------------------------------------------------------------
def _study_of_tiny_runs(tiny_runs, root):
    root.mkdir()
    for kind in ("tfidf", "bilstm", "transformer"):
        shutil.copytree(tiny_runs[kind], root / tiny_runs[kind].name)
    entries = [StudyEntry("TF-IDF", "TF-IDF + complement NB (baseline)", {}, tiny_runs["tfidf"].name),
               StudyEntry("BiLSTM", "BiLSTM + attention (study)", {}, tiny_runs["bilstm"].name),
               StudyEntry("DistilBERT", "DistilBERT full", {}, tiny_runs["transformer"].name)]
    record = StudyRecord("s1", 1.0, "tiny", "tiny", entries)
    write_record(root, record)
    return record


def test_reconcile_builds_the_ensemble_once(tiny_runs, tmp_path):
    root = tmp_path / "runs"
    _study_of_tiny_runs(tiny_runs, root)
    first = reconcile_study(root)[0]
    assert first.ensemble and (root / first.ensemble / store.RESULTS).is_file()
    res = store.read_json(root / first.ensemble / store.RESULTS)
    assert len(res["members"]) == 3
    second = reconcile_study(root)[0]
    assert second.ensemble == first.ensemble
    ensembles = [r for r in store.list_runs(root) if r.config.get("members")]
    assert len(ensembles) == 1 and study_state(root, second) == "ensembled"


def test_reconcile_waits_while_a_job_runs_and_needs_two_groups(tiny_runs, tmp_path):
    root = tmp_path / "runs"
    record = _study_of_tiny_runs(tiny_runs, root)
    store.update_status(root / tiny_runs["bilstm"].name, state="running")
    assert reconcile_study(root)[0].ensemble is None and study_state(root, record) == "pending"
    store.update_status(root / tiny_runs["bilstm"].name, state="failed")
    store.update_status(root / tiny_runs["transformer"].name, state="cancelled")
    assert reconcile_study(root)[0].ensemble is None and study_state(root, record) == "too few"


def test_study_table_beside_the_published_numbers(tiny_runs, tmp_path):
    root = tmp_path / "runs"
    record = _study_of_tiny_runs(tiny_runs, root)
    table = study_table(store.finished_runs(root), record).set_index("study row")
    assert list(table.index) == [p.label for p in PUBLISHED]
    assert list(table["published test %"]) == [62.90, NOT_GIVEN, 73.88, 74.06, NOT_GIVEN, 74.77, 74.17]
    bilstm = table.loc["BiLSTM + attention (GloVe)"]
    assert bilstm["our run"] == tiny_runs["bilstm"].name and "n=110" in bilstm["95 % CI (exact binomial)"]
    assert bilstm["published outside our CI"] in ("yes", "no") and "the study: GloVe" in bilstm["note"]
    # the tiny transformer is the study's "DistilBERT full" job: judged against DistilBERT full (74.06), only
    full = table.loc["DistilBERT full"]
    assert full["our run"] == tiny_runs["transformer"].name and full["published test %"] == 74.06
    assert full["gap (points)"] == pytest.approx(full["our test %"] - 74.06)
    for other in ("DistilBERT freeze", "DistilBERT hybrid", "BERT-base freeze", "BERT-base hybrid", "BERT-base full"):
        assert pd.isna(table.loc[other, "our run"]), other
    assert table.loc["DistilBERT hybrid", "published train s"] == 735
    assert "inferred" in table.loc["DistilBERT hybrid", "note"]
    # a row without a published accuracy has our interval but no gap
    assert (table["published macro-F1 %"] == NOT_GIVEN).all() and (table["published params"] == NOT_GIVEN).all()


def _info(run_id: str, preset: str, test_acc: float, val_acc: float, pretrained: str | None = None) -> store.RunInfo:
    values = dict(PRESETS[preset])
    if pretrained:
        values["pretrained"] = pretrained
    results = {"test_acc": test_acc, "val_acc": val_acc, "n_test": 7118, "f1_macro": 0.7, "train_seconds": 10.0}
    return store.RunInfo(run_id, Path(run_id), RunConfig(**values).resolved().to_dict(), {"state": "finished"}, results)


def test_each_run_is_compared_with_its_own_model_and_strategy():
    """Without a study record: runs are matched to the published row of their model AND strategy (a local
    folder named like the model counts), never to another strategy's figure."""
    runs = [_info("bert-hybrid", "BERT-base hybrid", 0.7450, 0.80, "/models/bert-base-uncased"),
            _info("bert-full", "BERT-base full", 0.7420, 0.90),  # a better val acc must not steal the hybrid row
            _info("distil-freeze", "DistilBERT freeze", 0.60, 0.95),
            _info("tfidf", "TF-IDF + complement NB (baseline)", 0.75, 0.99)]
    table = study_table(runs).set_index("study row")
    assert table.loc["BERT-base hybrid", "our run"] == "bert-hybrid"
    assert table.loc["BERT-base hybrid", "gap (points)"] == pytest.approx(74.50 - 74.77)
    assert table.loc["BERT-base full", "our run"] == "bert-full"
    assert table.loc["BERT-base full", "gap (points)"] == pytest.approx(74.20 - 74.17)
    freeze = table.loc["DistilBERT freeze"]
    assert freeze["our run"] == "distil-freeze" and freeze["published test %"] == NOT_GIVEN
    assert pd.isna(freeze["gap (points)"]) and "n=7118" in freeze["95 % CI (exact binomial)"]
    assert freeze["our macro-F1 %"] == pytest.approx(70.0)
    assert "tfidf" not in set(table["our run"].dropna())  # the study has no TF-IDF row
    assert pd.isna(table.loc["DistilBERT hybrid", "our run"])


# ---- CLI -----------------------------------------------------------------------------------------------
def test_cli_queue_dry_run_and_status(runs, study_models, tiny_runs, tmp_path, capsys):  # noqa: F811
    from newsclf import cli

    small = study_models[0]
    assert cli.main(["study", "queue", "--pretrained-small", small, "--pretrained-large", small, "--dry-run",
                     "--runs-dir", str(runs)]) == 0
    assert "dry run: nothing queued" in capsys.readouterr().out and not list_records(runs)
    root = tmp_path / "study_runs"
    _study_of_tiny_runs(tiny_runs, root)
    assert cli.main(["study", "status", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ensemble: " in out and "BERT-base hybrid" in out and "62.90" in out and "74.06" in out
    assert json.loads((root / ".study-s1.json").read_text())["ensemble"]


def test_cli_table_prints_the_published_table_and_matching_runs(tiny_runs, capsys):
    from newsclf import cli

    assert cli.main(["study", "table", "--runs-dir", str(tiny_runs["runs_dir"])]) == 0
    out = capsys.readouterr().out
    assert "not given" in out and "74.06" in out and "74.77" in out and "inferred" in out
    assert cli.main(["study", "table", "--json", "--runs-dir", str(tiny_runs["runs_dir"])]) == 0
    data = json.loads(capsys.readouterr().out)
    full = next(r for r in data["ours"] if r["study row"] == "DistilBERT full")
    assert full["published test %"] == 74.06 and full["our run"] is None  # the tiny models match no grid preset
    assert [r["test acc %"] for r in data["published"]] == [62.9, NOT_GIVEN, 73.88, 74.06, NOT_GIVEN, 74.77, 74.17]


def test_readme_shows_the_same_published_table():
    """The README's copy of the table says what PUBLISHED says, cell by cell."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split("### The study's published table", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ") and not ln.startswith("| model")][:len(PUBLISHED)]
    assert len(lines) == len(PUBLISHED)
    number = lambda cell: None if cell == NOT_GIVEN else float(cell.split()[0].replace(",", ""))  # noqa: E731
    for line, pub in zip(lines, PUBLISHED):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0].startswith(pub.model) and cells[1].split()[0] == (pub.strategy or "-")
        assert [number(c) for c in cells[2:]] == [pub.test_acc, pub.macro_f1, pub.train_seconds, pub.inference_ms,
                                                 pub.params], line


def test_split_note_discloses_the_difference():
    from newsclf.study_published import STUDY_SPLITS, split_note

    assert STUDY_SPLITS == {"train": 8584, "val": 2146, "test": 7112}
    assert STUDY_SPLITS["val"] == -(-(STUDY_SPLITS["train"] + STUDY_SPLITS["val"]) * 2 // 10)  # 20 % of 10,730
    note = split_note({"train": 8591, "val": 2148, "test": 7118})
    assert "8,584 / 2,146 / 7,112" in note and "ours 8,591 / 2,148 / 7,118 (+7 / +2 / +6)" in note
    assert "No short-document drop rule found reproduces" in note and "bench_split_rule.py" in note
    assert "ours" not in split_note(None) and "8,584" in split_note({"train": 1})  # sizes unknown: the study's only
