"""AppTest of Home and every page: real tiny runs (tfidf, bilstm, tiny transformer), and the empty state."""
from __future__ import annotations

import shutil
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.app import PAGES, ROOT, app_env, empty_env, open_page  # noqa: F401
from newsclf.plots import label
from newsclf.ui.frame import plain

pytestmark = pytest.mark.app
TIMEOUT = 60


def run_page(path: str) -> AppTest:
    return open_page(path, timeout=TIMEOUT, check=False)  # the tests check exceptions themselves


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "success", "error", "title", "subheader", "metric"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "")) + " " + str(getattr(el, "label", "")))
    return "\n".join(parts)


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_with_runs(app_env, path):
    at = run_page(path)
    assert_ok(at)
    assert "Runs dir" in texts(at)  # the shared sidebar is on every page


@pytest.mark.parametrize("path", PAGES)
def test_page_empty_state(empty_env, path):
    at = run_page(path)
    assert_ok(at)
    body = texts(at)
    assert "Corpus: missing" in body
    if path in ("pages/3_Results.py", "pages/4_Playground.py", "pages/5_Errors.py", "pages/6_Compare.py"):
        assert "No finished runs yet" in body
    if path == "pages/1_Dataset.py":
        assert "not here yet" in body


def test_home_shows_leaderboard_and_quick_start(app_env):
    at = run_page("app.py")
    assert_ok(at)
    board = at.dataframe[0].value
    assert len(board) == 3 and {"test acc", "params"} <= set(board.columns)
    assert board["test acc"].is_monotonic_decreasing
    assert not at.button(key="home.quickstart").disabled


def test_home_without_data_offers_import(empty_env, fixture_archive):
    at = run_page("app.py")
    assert at.button(key="home.quickstart").disabled
    at.text_input(key="data.archive_path").set_value(str(fixture_archive))
    at.button(key="data.import").click()
    at.run()
    assert_ok(at)
    assert "corpus is in" in texts(at)


def test_home_import_bad_path_is_a_message(empty_env, tmp_path):
    at = run_page("app.py")
    at.text_input(key="data.archive_path").set_value(str(tmp_path / "nope.tar.gz"))
    at.button(key="data.import").click()
    at.run()
    assert_ok(at)
    assert any("does not exist" in e.value for e in at.error)


def test_dataset_page_tables_and_samples(app_env):
    at = run_page("pages/1_Dataset.py")
    assert_ok(at)
    assert at.metric[0].value == "360"  # fixture corpus: 20 classes x (12 + 6) posts, before dropping
    split_table = at.dataframe[2].value
    assert dict(zip(split_table["split"], split_table["documents"])) == {"train": 176, "val": 44, "test": 110}
    note = next(c.value for c in at.caption if "study's seed protocol" in c.value)  # disclosed beside our sizes
    assert "8,584 / 2,146 / 7,112" in note and "ours 176 / 44 / 110 (-8,408 / -2,102 / -7,002)" in note
    assert "No short-document drop rule found reproduces" in note
    at.selectbox(key="dataset.sample_class").set_value("sci.space")
    at.button(key="dataset.reshuffle").click()  # samples load the corpus: on demand, not on the first visit
    at.run()
    assert any(plain("sci.space") in e.label for e in at.expander)  # labels are markdown: escaped plain text
    at.radio(key="dataset.protocol").set_value("raw")
    at.run()
    assert_ok(at)
    assert not any("study's seed protocol" in c.value for c in at.caption)  # raw drops nothing: no such note


def test_results_page_table_csv_and_cell_documents(app_env):
    at = run_page("pages/3_Results.py")
    assert_ok(at)
    table = at.dataframe[0].value
    assert len(table) == 3 and "inference ms/doc" in table.columns
    # the keyboard fallback for confusion-matrix clicks lists the cell's documents
    cell_box = next(s for s in at.selectbox if s.key and s.key.startswith("results.cell."))
    assert cell_box.options
    assert any("documents with true" in m.value for m in at.markdown)
    at.toggle(key="results.counts").set_value(True)
    at.radio(key="results.split").set_value("val")
    at.run()
    assert_ok(at)
    assert "Fine-tuning strategies" in texts(at)  # the tiny transformer run


@pytest.mark.parametrize("path", ["pages/3_Results.py", "pages/4_Playground.py", "pages/5_Errors.py", "pages/6_Compare.py"])
def test_pages_survive_deleted_and_half_written_runs(app_env, path):
    at = run_page(path)
    if path.endswith("Playground.py"):
        at.text_area(key="playground.text").input("nasa orbit shuttle")
        at.run()
        assert len([m for m in at.metric if m.label == "Predicted class"]) == 3
    victim = next(p for p in app_env["runs_dir"].iterdir() if p.name.endswith("-tfidf"))
    shutil.rmtree(victim)
    at.run()
    assert_ok(at)
    # a run whose best/ vanishes while it is listed as finished
    bilstm = next(p for p in app_env["runs_dir"].iterdir() if p.name.endswith("-bilstm"))
    shutil.rmtree(bilstm / "best")
    (bilstm / "predictions_test.npz").write_bytes(b"garbage")
    at.run()
    assert_ok(at)
    # half-written run: config.json only
    (app_env["runs_dir"] / "20990101-000000-000-half").mkdir()
    (app_env["runs_dir"] / "20990101-000000-000-half" / "config.json").write_text("{")
    at.run()
    assert_ok(at)


def test_playground_prompt_prediction_and_escaping(app_env):
    at = run_page("pages/4_Playground.py")
    assert_ok(at)
    assert any("Paste some text" in i.value for i in at.info)
    assert len(at.multiselect(key="playground.runs").value) >= 2
    at.text_area(key="playground.text").input("<script>alert('x')</script> nasa orbit shuttle launch <b>space</b>")
    at.run()
    assert_ok(at)
    predicted = [m for m in at.metric if m.label == "Predicted class"]
    assert len(predicted) == 3
    assert any(s in texts(at) for s in ("runs agree", "runs disagree"))
    for md in at.markdown:  # user text never reaches markdown unescaped
        assert "<script>" not in md.value


def test_playground_calibrated_probabilities(app_env):
    from newsclf import calibration

    runs = sorted(p for p in app_env["runs_dir"].iterdir() if p.is_dir())
    cal = calibration.calibrate_run(runs[0])  # one run calibrated, the others not
    at = run_page("pages/4_Playground.py")
    at.text_area(key="playground.text").input("nasa orbit shuttle launch space")
    at.run()
    before = [m.value for m in at.metric]
    plain_captions = [c.value for c in at.caption if c.value.startswith("probability")]
    at.toggle(key="playground.calibrated").set_value(True)
    at.run()
    assert_ok(at)
    captions = [c.value for c in at.caption if c.value.startswith("probability")]
    assert len(captions) == len(plain_captions) == 3
    assert sum(f"calibrated (T = {cal.temperature:.2f})" in c for c in captions) == 1
    assert sum("not calibrated" in c for c in captions) == 2
    assert [m.value for m in at.metric] == before  # the predicted classes never change
    (runs[1] / calibration.CALIBRATION).symlink_to(runs[0] / calibration.CALIBRATION)  # a hostile link
    at.run()
    assert_ok(at)
    captions = [c.value for c in at.caption if c.value.startswith("probability")]
    assert len(captions) == 3 and sum("not calibrated" in c for c in captions) == 2


def test_playground_huge_paste_is_truncated(app_env):
    at = run_page("pages/4_Playground.py")
    at.text_area(key="playground.text").input("hockey puck goalie " * 300_000)  # ~5.7 MB
    at.run()
    assert_ok(at)
    assert any("only the first" in w.value for w in at.warning)
    assert len([m for m in at.metric if m.label == "Predicted class"]) == 3


def test_playground_pick_test_document(app_env):
    at = run_page("pages/4_Playground.py")
    at.button(key="playground.use_sample").click()
    at.run()
    assert_ok(at)
    assert at.text_area(key="playground.text").value
    assert [m for m in at.metric if m.label == "Predicted class"]


def test_errors_page_filters_and_disagreement(app_env):
    at = run_page("pages/5_Errors.py")
    assert_ok(at)
    at.slider(key="errors.conf").set_value((0.0, 0.5))
    at.run()
    assert_ok(at)
    at.selectbox(key="errors.other").set_value(at.selectbox(key="errors.other").options[0])
    at.radio(key="errors.split").set_value("val")
    at.run()
    assert_ok(at)
    assert "disagree on" in texts(at)


def test_train_form_validation_message(app_env):
    at = run_page("pages/2_Train.py")
    assert_ok(at)
    at.selectbox(key="train.preset").set_value("BiLSTM small (CPU quick start)")
    at.run()
    key = "train.BiLSTM small (CPU quick start).bilstm.dropout"
    at.number_input(key=key).set_value(2.0)
    at.run()
    assert any("dropout" in e.value for e in at.error)
    assert at.button(key="train.start").disabled


def test_train_start_job_and_live_panel(app_env):
    from newsclf import jobs

    at = run_page("pages/2_Train.py")
    assert at.selectbox(key="train.preset").value == "TF-IDF + complement NB (baseline)"
    at.text_input(key="train.TF-IDF + complement NB (baseline).tfidf.name").input("from-ui")
    at.run()
    at.button(key="train.start").click()
    at.run()
    assert_ok(at)
    assert any("Queued job" in s.value for s in at.success)
    job = next(j for j in jobs.list_jobs(app_env["runs_dir"]) if j.name == "from-ui")
    deadline = time.time() + 120
    while not jobs.job_status(job.id, app_env["runs_dir"]).terminal and time.time() < deadline:
        time.sleep(0.5)
    assert jobs.job_status(job.id, app_env["runs_dir"]).state == "finished"
    at.run()  # run_every timers do not fire in AppTest: rerun by hand
    assert_ok(at)
    assert any(job.id in e.label and "finished" in e.label for e in at.expander)


def test_home_quick_start_queues_tfidf_and_small_bilstm(app_env):
    from newsclf import jobs

    at = run_page("app.py")
    at.button(key="home.quickstart").click()
    at.run()
    assert_ok(at)
    assert any("Queued" in s.value for s in at.success)
    queued = jobs.list_jobs(app_env["runs_dir"])
    assert sorted(j.model for j in queued) == ["bilstm", "tfidf"]
    assert any(j.name == "bilstm-small" for j in queued)
    for job in queued:  # only the queueing is under test here
        jobs.cancel(job.id, app_env["runs_dir"], timeout=5, grace=2, wait=True)
    at.run()
    assert_ok(at)


# ---- plain text, blanks, the import path, row selection, every explanation method ----------------
EVIL = ["[x](javascript:alert(1))", "<b>bold</b>"]


def test_plain_escapes_markdown_and_html():
    assert plain("[x](javascript:alert(1))") == r"\[x\]\(javascript\:alert\(1\)\)"
    assert plain("<b>bold</b> & *it* `c` $m$") == r"&lt;b&gt;bold&lt;/b&gt; &amp; \*it\* \`c\` \$m\$"
    assert plain("a\u202eb") == "a\\[U\\+202E\\]b"


def _rename_classes(runs_dir) -> list[str]:
    """Give every run's classes hostile names (labels.json and results.json); returns the new names."""
    import json

    names = None
    for run in runs_dir.iterdir():
        labels = json.loads((run / "labels.json").read_text())
        names = [f"{EVIL[i % 2]}{i}" for i in range(len(labels))]
        (run / "labels.json").write_text(json.dumps(names))
        results = json.loads((run / "results.json").read_text())
        results["label_names"] = names
        for split in ("val", "test"):
            for row in results.get(f"{split}_report", {}).get("per_class", []):
                row["label"] = names[labels.index(row["label"])]
        (run / "results.json").write_text(json.dumps(results))
    return names


def _markdown_sources(at: AppTest) -> list[str]:
    values = [str(getattr(el, "value", "")) for kind in ("markdown", "caption", "info", "warning", "success", "error")
              for el in getattr(at, kind)]
    return values + [e.label for e in at.expander] + [str(m.value) for m in at.metric]


def _chart_strings(at: AppTest) -> str:
    import json

    return " ".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("plotly_chart"))


@pytest.mark.parametrize("path", ["pages/3_Results.py", "pages/4_Playground.py", "pages/5_Errors.py", "pages/6_Compare.py"])
def test_hostile_class_names_render_as_plain_text(app_env, path):
    names = _rename_classes(app_env["runs_dir"])
    at = run_page(path)
    if path.endswith("Playground.py"):
        at.text_area(key="playground.text").input("nasa orbit shuttle launch space")
        at.run()
    assert_ok(at)
    sources = _markdown_sources(at)
    assert not [s for s in sources if "](" in s or "<b>" in s]  # no link, no bold: escaped plain text
    assert any(plain(n) in s for s in sources for n in names)  # the names are there, escaped
    charts = _chart_strings(at)
    assert "<b>bold" not in charts
    assert any(label(n) in charts for n in names)  # figure labels and titles hold the escaped names


def test_empty_cells_are_blank_not_none(app_env):
    from newsclf import jobs
    from newsclf.config import RunConfig

    job = jobs.submit(RunConfig(model="tfidf", name="blank"), app_env["runs_dir"], gpus=None)
    jobs.cancel(job.id, app_env["runs_dir"], timeout=5, grace=2, wait=True)  # no progress, no queue position
    at = run_page("app.py")
    queue = next(d.value for d in at.dataframe if "job" in d.value.columns)
    assert not queue.isna().any().any() and "None" not in queue.astype(str).to_numpy()
    at = run_page("pages/3_Results.py")
    ratios = next(d.value for d in at.dataframe if "quantity" in d.value.columns)
    assert not ratios.isna().any().any() and "None" not in ratios.astype(str).to_numpy()
    assert (ratios == "–").sum().sum() == len(ratios)  # each row fills one of the two result columns


def test_import_path_is_not_prefilled_from_a_development_folder(empty_env, tmp_path, monkeypatch):
    """A clone with a ../shared/data archive beside it behaves like one with nothing beside it."""
    clone = tmp_path / "clone"
    clone.mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "20news-bydate.tar.gz").write_bytes(b"not an archive")
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(clone)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    assert_ok(at)
    assert at.text_input(key="data.archive_path").value == ""
    assert not at.button(key="data.import").disabled
    at.button(key="data.import").click()
    at.run()
    assert_ok(at)
    assert any("path" in w.value for w in at.warning)


def _select_row(at: AppTest, prefix: str, row: int) -> str:
    """Select `row` of the st.dataframe whose key starts with `prefix`; returns that row's doc id."""
    table = next(d for d in at.dataframe if d.key and d.key.startswith(prefix))
    at.session_state[table.key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert_ok(at)
    return table.value["doc_id"].iloc[row]


def _explained(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Explaining document"))


def test_errors_page_explains_the_row_selected_in_either_tab(app_env):
    at = run_page("pages/5_Errors.py")
    doc = _select_row(at, "errors.dis.", 1)
    assert plain(doc) in _explained(at) and "Two models disagree" in _explained(at)
    assert at.selectbox(key=next(s.key for s in at.selectbox if s.key and s.key.startswith("errors.dis."))).value == doc
    panels = [m.value for m in at.markdown if m.value.startswith("**") and "·" in m.value]
    assert len(panels) == 2  # both runs explain the disagreement document
    doc = _select_row(at, "errors.err.", 1)
    assert plain(doc) in _explained(at) and "Misclassified" in _explained(at)


def test_bilstm_explained_with_every_method_in_the_dashboard(app_env):
    from newsclf.models import get_family

    at = run_page("pages/4_Playground.py")
    bilstm = next(o for o in at.multiselect(key="playground.runs").options if o.endswith("(bilstm / random 16d)"))
    run_id = bilstm.split(" ", 1)[0]
    at.multiselect(key="playground.runs").set_value([run_id])
    at.text_area(key="playground.text").input("nasa orbit shuttle launch space")
    at.run()
    assert_ok(at)
    for method in get_family("bilstm").method_names():
        at.radio(key="playground-explain-0-method").set_value(method)
        at.run()
        assert_ok(at)
        assert not at.error, [e.value for e in at.error]
        assert len(at.get("html")) == 2  # highlighted text + legend


@pytest.mark.parametrize("path", PAGES)
def test_every_page_survives_every_kind_of_damaged_run(app_env, path, tmp_path):
    """The sweep: copies of a run, each damaged one way (tests/helpers/hostile.py), sit in the runs dir;
    every page renders without an exception and never shows a file from outside the runs dir."""
    from tests.helpers.hostile import DAMAGE, NUMBERS

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('["SECRET"]')
    (outside / "x").write_bytes(b"SECRET")
    runs = app_env["runs_dir"]
    sources = [p for p in runs.iterdir() if p.is_dir()]
    for i, (name, damage) in enumerate(sorted({**DAMAGE, **NUMBERS}.items())):
        source = sources[i % len(sources)]
        victim = runs / f"{source.name[:19]}-{i:03d}-{name}"
        shutil.copytree(source, victim)
        damage(victim, outside)
    at = run_page(path)
    assert_ok(at)
    if path.endswith("Playground.py"):
        at.text_area(key="playground.text").input("nasa orbit shuttle")
        at.run()
        assert_ok(at)
    assert "SECRET" not in texts(at)
