"""AppTest of the Compare page (paired significance, pairwise Holm table, calibration + temperature,
length slices, ensemble form, header leakage, report zip), the study section of Results, the paired
test in Errors' "Two models disagree", and an ensemble shown on Results, Playground and Errors."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from newsclf import jobs, store
from tests.helpers.app import ROOT, app_env, open_page  # noqa: F401
from tests.helpers.jobs import fake_trainer  # noqa: F401

pytestmark = pytest.mark.app
TIMEOUT = 90


def run_page(path: str, query: dict | None = None) -> AppTest:
    return open_page(path, query, TIMEOUT)


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def text(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "success", "error", "subheader", "metric")
    return "\n".join(str(getattr(e, "value", "")) + " " + str(getattr(e, "label", "")) for k in kinds for e in getattr(at, k))


def chart_ids(at: AppTest) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


@pytest.fixture
def queue_env(monkeypatch, tmp_path, fake_trainer):  # noqa: F811
    """Jobs run the fake trainer, signed with a throwaway key, on the CPU."""
    monkeypatch.setenv(jobs.ENV_WORKER_CMD, json.dumps(["python", str(fake_trainer)]))
    monkeypatch.setenv(jobs.ENV_JOB_KEY_FILE, str(tmp_path / "keys" / "job.key"))
    monkeypatch.setenv(jobs.ENV_GPUS, "")


def test_compare_page_concludes(app_env):
    at = run_page("pages/6_Compare.py")
    body = text(at)
    assert "McNemar p" in body and ("more accurate than" in body or "No significant accuracy difference" in body)
    pairs = next(d.value for d in at.dataframe if "mcnemar_p_holm" in d.value.columns)
    assert len(pairs) == 3 and (pairs["mcnemar_p_holm"] >= pairs["mcnemar_p"] - 1e-12).all()
    per_class = next(d.value for d in at.dataframe if "CI excludes 0" in d.value.columns)
    assert len(per_class) == 20 and {"A - B", "CI low", "CI high"} <= set(per_class.columns)
    cal = next(d.value for d in at.dataframe if "ECE" in d.value.columns)
    assert cal["calibration"].str.contains("confident|calibrated").all()
    ids = chart_ids(at)
    assert any("compare.reliability" in i for i in ids) and any("compare.slices.lengths" in i for i in ids)
    assert any("compare.paired.forest" in i for i in ids) and any("compare.pairwise_plot" in i for i in ids)
    lengths = next(d.value for d in at.dataframe if "unseen_share" in d.value.columns)
    assert set(lengths["run"]) == set(at.multiselect(key="compare.runs").value)
    # temperature: fitted on validation and stored with each run
    at.button(key="compare.fit_t").click().run()
    ok(at)
    assert any("argmax unchanged" in s.value for s in at.success)
    for run_id in at.multiselect(key="compare.runs").value:
        assert (app_env["runs_dir"] / run_id / "calibration.json").is_file()
    cal = next(d.value for d in at.dataframe if "ECE" in d.value.columns)
    assert "–" not in set(cal["temperature (val)"])


def test_compare_report_zip_has_the_report_files(app_env):
    from newsclf.report import FILES

    at = run_page("pages/6_Compare.py")
    at.button(key="compare.report.build").click().run()
    ok(at)
    zipped = at.session_state["compare.report.zip"][1]
    names = zipfile.ZipFile(io.BytesIO(zipped)).namelist()
    assert sorted(n.split("/")[-1] for n in names) == sorted(FILES)
    assert any(b.proto.label == "Download report.zip" for b in at.get("download_button"))


def test_ensemble_form_builds_and_the_ensemble_appears_everywhere(app_env):
    at = run_page("pages/6_Compare.py")
    candidates = [r.run_id for r in store.finished_runs(app_env["runs_dir"])]
    at.multiselect(key="compare.ensemble.members").set_value(candidates[:1])
    at.button(key="FormSubmitter:compare.ensemble.form-Build the ensemble").click().run()
    ok(at)
    assert any("at least 2" in e.value for e in at.error)  # the library's one-line refusal
    tfidf, bilstm = (next(o for o in candidates if o.endswith(k)) for k in ("tfidf", "bilstm"))
    at.multiselect(key="compare.ensemble.members").set_value([tfidf, bilstm])
    at.radio(key="compare.ensemble.weights").set_value("equal")
    at.text_input(key="compare.ensemble.name").input("uiens")
    at.button(key="FormSubmitter:compare.ensemble.form-Build the ensemble").click().run()
    ok(at)
    assert any("Built ensemble" in s.value for s in at.success)
    ens = next(r for r in store.finished_runs(app_env["runs_dir"]) if r.run_id.endswith("uiens"))
    assert ens.results["members"] == [tfidf, bilstm]
    # Results: listed and compared
    at = run_page("pages/3_Results.py")
    assert any(o.startswith(ens.run_id) for o in at.multiselect(key="results.runs").options)
    at.multiselect(key="results.runs").set_value([ens.run_id, tfidf]).run()
    ok(at)
    # Playground: the ensemble side by side with its members for pasted text
    at = run_page("pages/4_Playground.py", {"runs": [ens.run_id]})
    at.button(key="playground.members").click().run()
    ok(at)
    assert at.multiselect(key="playground.runs").value == [ens.run_id, tfidf, bilstm]
    at.text_area(key="playground.text").input("NASA launched the shuttle into orbit around the moon").run()
    ok(at)
    assert len([m for m in at.metric if m.label == "Predicted class"]) == 3
    # Errors: the ensemble as the run, a member as the other; the paired test is shown
    at = run_page("pages/5_Errors.py")
    at.selectbox(key="errors.run").set_value(ens.run_id).run()
    at.selectbox(key="errors.other").set_value(tfidf).run()
    ok(at)
    assert "McNemar p" in text(at)


def test_errors_disagree_tab_shows_the_paired_test(app_env):
    at = run_page("pages/5_Errors.py")
    body = text(at)
    assert "McNemar p" in body and "documents" in body
    assert any("errors.paired.forest" in i for i in chart_ids(at))


def test_results_pairwise_paired_and_study_table(app_env):
    at = run_page("pages/3_Results.py")
    assert any("mcnemar_p_holm" in d.value.columns for d in at.dataframe)
    other = at.selectbox(key="results.cm_other")
    other.set_value(other.options[1]).run()
    ok(at)
    assert "McNemar p" in text(at)
    table = next(d.value for d in at.dataframe if "study row" in d.value.columns)
    assert list(table["study row"]) == ["BiLSTM + attention (GloVe)", "DistilBERT freeze", "DistilBERT hybrid",
                                        "DistilBERT full", "BERT-base freeze", "BERT-base hybrid", "BERT-base full"]
    rows = table.set_index("study row")
    assert rows.loc["DistilBERT full", "published test %"] == "74.06"
    assert rows.loc["BERT-base hybrid", "published test %"] == "74.77"
    assert rows.loc["BERT-base freeze", "published test %"] == "not given"
    note = next(c.value for c in at.caption if "study's seed protocol" in c.value)
    assert "8,584 / 2,146 / 7,112" in note and "ours 176 / 44 / 110" in note and "reproduces" in note
    published = next(d.value for d in at.dataframe if "strategy source" in d.value.columns)
    assert (published["macro-F1 %"] == "not given").all() and "74.06" in set(published["test acc %"])


def test_results_queues_the_study_and_refuses_an_unknown_model(app_env, queue_env, tiny_model_dirs, tmp_path):
    at = run_page("pages/3_Results.py")
    at.text_input(key="study.small").input(str(tmp_path / "nowhere"))
    at.button(key="study.queue").click().run()
    ok(at)
    assert at.error and not list(app_env["runs_dir"].glob(".study-*.json"))
    from tests.helpers.tiny_models import make_tiny_bert, make_tiny_distilbert

    small = make_tiny_distilbert(tmp_path / "small", max_len=512)
    large = make_tiny_bert(tmp_path / "large", max_len=512)
    at.text_input(key="study.small").input(str(small))
    at.text_input(key="study.large").input(str(large))
    at.button(key="study.queue").click().run()
    ok(at)
    assert any("Queued 8 jobs" in s.value for s in at.success)
    for job in jobs.list_jobs(app_env["runs_dir"], reconcile=False):
        if not job.terminal:
            jobs.cancel(job.id, app_env["runs_dir"], timeout=5, grace=2, wait=True)


def test_header_leakage_twins_share_and_queue(app_env, queue_env):
    from tests.helpers.runs import train_tiny_run

    raw = train_tiny_run(app_env["runs_dir"], app_env["data_home"], model="tfidf", name="tfidf", protocol="raw")
    at = run_page("pages/6_Compare.py")
    twins = next(d.value for d in at.dataframe if "raw - seed (points)" in d.value.columns)
    assert list(twins["raw run"]) == [raw.name]
    at.selectbox(key="compare.leakage.raw").set_value(raw.name)
    at.toggle(key="compare.leakage.explain").set_value(True).run()
    ok(at)
    share = next(m for m in at.metric if m.label == "Attribution mass on header lines")
    assert share.value.endswith("%")
    missing = at.selectbox(key="compare.leakage.missing")
    pick = next(r.run_id for r in store.finished_runs(app_env["runs_dir"]) if r.run_id.endswith("bilstm"))
    missing.set_value(pick)
    at.button(key="compare.leakage.queue").click().run()
    ok(at)
    assert any("raw protocol" in s.value for s in at.success)
    queued = [j for j in jobs.list_jobs(app_env["runs_dir"], reconcile=False) if j.name.endswith("-raw")]
    assert len(queued) == 1
    assert store.read_json(queued[0].path / store.CONFIG)["protocol"] == "raw"
    for job in queued:
        if not job.terminal:
            jobs.cancel(job.id, app_env["runs_dir"], timeout=5, grace=2, wait=True)
