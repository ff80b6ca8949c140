"""AppTest of the dashboard features added to the pages: the Results page's one confusion matrix,
difference matrix, per-class table and curves; the Runs section; the Train form's guards, resume
and clone; the Errors page's search and 2x2; the Playground's batch mode and shareable URL; Dataset numbers."""
from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.app import ROOT, app_env, empty_env, open_page  # noqa: F401

pytestmark = pytest.mark.app
TIMEOUT = 60


def run_page(path: str, query: dict | None = None) -> AppTest:
    return open_page(path, query, TIMEOUT)


def charts(at: AppTest, prefix: str) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id and prefix in c.proto.id]


def chart_by_key(at: AppTest, key: str) -> dict:
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        if key in c.proto.id:
            return spec
    raise AssertionError(f"no chart {key}")


def all_text(at: AppTest) -> str:
    kinds = ("markdown", "caption", "info", "warning", "success", "error", "subheader", "metric")
    return "\n".join(str(getattr(e, "value", "")) for k in kinds for e in getattr(at, k))


# ---- Results ------------------------------------------------------------------------------------
def test_results_one_large_matrix_difference_and_per_class_table(app_env):
    at = run_page("pages/3_Results.py")
    matrices = [c for c in at.get("plotly_chart") if "results.cm." in c.proto.id]
    assert len(matrices) == 1  # one large matrix, not three illegible ones
    spec = json.loads(matrices[0].proto.spec)
    heat, cells = spec["data"][0], spec["data"][1]
    assert heat["zmax"] == 1 and "comp.sys.ibm.pc.hardware" in heat["x"]  # row shares, full class names
    colours = set(cells["textfont"]["color"])
    assert colours <= {"white", "#1b1b1b"} and "white" in colours  # dark cells get white text
    per_class = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert list(per_class.columns) == ["class", "precision", "recall", "F1", "support"] and len(per_class) == 20
    # counts share one colour scale across the compared runs
    at.toggle(key="results.counts").set_value(True).run()
    zmaxes = []
    for run_id in at.selectbox(key="results.cm_run").options:
        at.selectbox(key="results.cm_run").set_value(at.selectbox(key="results.cm_run").options[0])
    spec = json.loads(next(c for c in at.get("plotly_chart") if "results.cm." in c.proto.id).proto.spec)
    zmaxes.append(spec["data"][0]["zmax"])
    assert zmaxes[0] > 1
    other = at.selectbox(key="results.cm_other")
    other.set_value(other.options[1]).run()
    assert not at.exception
    diff = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "results.cmdiff." in c.proto.id]
    assert len(diff) == 1 and diff[0]["data"][0]["zmid"] == 0
    per_class = next(d.value for d in at.dataframe if "precision" in d.value.columns)
    assert {"F1 B", "F1 A - B"} <= set(per_class.columns)


def test_results_curves_step_axis_smoothing_log_and_tfidf_note(app_env):
    at = run_page("pages/3_Results.py")
    at.radio(key="results.curve_x").set_value("step")
    at.slider(key="results.smoothing").set_value(0.6)
    at.toggle(key="results.log_y").set_value(True)
    at.run()
    assert not at.exception
    loss = chart_by_key(at, "results.curve.loss")
    assert loss["layout"]["yaxis"]["type"] == "log" and loss["layout"]["xaxis"]["title"]["text"] == "optimizer step"
    assert loss["data"], "per-step loss of the torch runs"
    at.radio(key="results.curve_x").set_value("time_s").run()
    assert "wall-clock" in chart_by_key(at, "results.curve.loss")["layout"]["xaxis"]["title"]["text"]
    # only the TF-IDF run: its (absent) train loss is said, not an empty chart
    tfidf = next(o for o in at.multiselect(key="results.runs").options if o.endswith("(tfidf / cnb)"))
    at.multiselect(key="results.runs").set_value([tfidf.split(" ", 1)[0]]).run()
    train = chart_by_key(at, "results.curve.train_loss")
    assert not train["data"] and "no per-step loss for this model" in json.dumps(train["layout"]["annotations"])


def test_runs_section_rename_tag_archive_delete_and_clone(app_env):
    from newsclf import manage

    at = run_page("pages/3_Results.py")
    run_id = at.selectbox(key="runs.pick").value
    form = at.get("form")
    assert form
    at.text_input[next(i for i, t in enumerate(at.text_input) if t.label == "Display name")].input("<b>my run</b>")
    at.text_input[next(i for i, t in enumerate(at.text_input) if t.label.startswith("Tags"))].input("best cpu")
    at.button[next(i for i, b in enumerate(at.button) if b.label == "Save")].click()
    at.run()
    assert not at.exception
    meta = manage.read_meta(app_env["runs_dir"] / run_id)
    assert meta.display_name == "<b>my run</b>" and meta.tags == ["best", "cpu"]
    assert any("<b>my run</b> · " in o for o in at.multiselect(key="results.runs").options)
    assert all("<b>" not in m.value for m in at.markdown)
    # delete needs the confirmation box
    assert at.button(key="runs.delete").disabled
    at.checkbox(key=f"runs.confirm.{run_id}").check().run()
    at.button(key="runs.delete").click().run()
    assert not at.exception and not (app_env["runs_dir"] / run_id).exists()
    # clone config: the Train form starts from it
    at.button(key="runs.clone").click().run()
    assert not at.exception
    assert at.selectbox(key="train.preset").value.startswith("Cloned")


def test_runs_section_config_diff(app_env):
    at = run_page("pages/3_Results.py")
    diff = next(d.value for d in at.dataframe if list(d.value.columns) == ["field", "A", "B"])
    assert list(diff.columns) == ["field", "A", "B"] and "model" in diff["field"].tolist()


# ---- Train --------------------------------------------------------------------------------------
def test_train_without_corpus_disables_start_and_says_where_to_import(empty_env):
    at = run_page("pages/2_Train.py")
    assert at.button(key="train.start").disabled
    assert any("Import a local archive" in w.value for w in at.warning)


def test_train_form_head_epochs_only_for_hybrid_and_offline_model_refused(app_env):
    at = run_page("pages/2_Train.py")
    at.selectbox(key="train.preset").set_value("DistilBERT freeze").run()
    prefix = "train.DistilBERT freeze.transformer."
    keys = {w.key for w in at.number_input}
    assert prefix + "head_epochs" not in keys
    # the default hub id cannot be loaded offline: refused under the field before any job exists
    assert any("pretrained" in e.value for e in at.error)
    assert at.button(key="train.start").disabled
    at.selectbox(key=prefix + "strategy").set_value("hybrid").run()
    assert prefix + "head_epochs" in {w.key for w in at.number_input}


def test_cancelled_job_restarts_with_the_same_config_and_toasts(app_env):
    from newsclf import jobs
    from newsclf.config import RunConfig

    job = jobs.submit(RunConfig(model="tfidf", name="again"), app_env["runs_dir"], gpus=None)
    jobs.cancel(job.id, app_env["runs_dir"], timeout=5, grace=2, wait=True)
    at = run_page("pages/2_Train.py")
    assert any(b.label == "Restart with the same config" for b in at.button)
    at.button(key=f"retry-{job.id}").click().run()
    assert not at.exception
    again = [j for j in jobs.list_jobs(app_env["runs_dir"]) if j.name == "again" and j.id != job.id]
    assert len(again) == 1
    deadline = time.time() + 120
    while not jobs.job_status(again[0].id, app_env["runs_dir"]).terminal and time.time() < deadline:
        time.sleep(0.5)
    at.run()  # the job this session saw queued/running has ended: a toast says so
    assert any(again[0].id in t.value for t in at.toast)


# ---- Errors -------------------------------------------------------------------------------------
def test_errors_search_and_agreement_cells(app_env):
    at = run_page("pages/5_Errors.py")
    first = next(d for d in at.dataframe if d.key and d.key.startswith("errors.err.")).value
    at.text_input(key="errors.search").input("zzzznotaword").run()
    assert any("No misclassified documents" in i.value for i in at.info)
    at.text_input(key="errors.search").input("").run()
    agree = next(c for c in at.get("plotly_chart") if "errors.agree." in c.proto.id)
    counts = [p[2] for p in json.loads(agree.proto.spec)["data"][1]["customdata"]]
    assert sum(counts) == 110  # fixture test split
    for cell, n in zip(["both right", "only A right", "only B right", "both wrong"], counts):
        at.radio(key="errors.cell").set_value(cell).run()
        assert not at.exception
        if n:
            table = next(d for d in at.dataframe if d.key and d.key.startswith("errors.dis.")).value
            assert len(table) == n
    assert len(first)


# ---- Playground ---------------------------------------------------------------------------------
def test_playground_batch_mode_table_and_csv(app_env):
    at = run_page("pages/4_Playground.py")
    at.toggle(key="playground.batch").set_value(True).run()
    at.text_area(key="playground.batch_text").input(
        "nasa orbit shuttle launch\n\nhockey puck goalie rink\n\n\ncar engine dealer").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "#" in d.value.columns)
    assert len(table) == 3 and sum(c.endswith(" predicted") for c in table.columns) == len(
        at.multiselect(key="playground.runs").value)
    assert at.get("download_button")


def test_playground_state_comes_from_and_goes_to_the_url(app_env):
    at = run_page("pages/4_Playground.py")
    options = at.multiselect(key="playground.runs").options
    ids = [o.split(" ", 1)[0] for o in options]
    at = run_page("pages/4_Playground.py", {"runs": [ids[2], ids[0]], "text": "nasa orbit shuttle"})
    assert at.multiselect(key="playground.runs").value == [ids[2], ids[0]]
    assert at.text_area(key="playground.text").value == "nasa orbit shuttle"
    assert len([m for m in at.metric if m.label == "Predicted class"]) == 2
    at.multiselect(key="playground.runs").set_value([ids[1]]).run()
    assert at.query_params["runs"] == [ids[1]] or at.query_params["runs"] == ids[1]


# ---- Dataset ------------------------------------------------------------------------------------
def test_dataset_statistics_are_formatted(app_env):
    at = run_page("pages/1_Dataset.py")
    import re

    values = [str(v) for d in at.dataframe[:2] for v in d.value["value"]]
    numbers = [v for v in values if re.fullmatch(r"[\d,]+(\.\d+)?", v)]
    assert numbers and all("." not in v or len(v.split(".")[1]) == 1 for v in numbers), values
    assert not any(v in ("None", "nan") for v in values)


def test_offline_download_error_points_to_the_import_tab(empty_env, monkeypatch):
    from newsclf import data

    def offline(home):
        raise data.DataError("cannot download the corpus: no network")

    monkeypatch.setattr(data, "fetch_corpus", offline)
    at = run_page("app.py")
    at.button(key="data.fetch").click().run()
    assert not at.exception
    assert any("no network" in e.value and "Import a local archive" in e.value for e in at.error)


def test_archived_runs_leave_the_leaderboard_and_pickers_until_asked_for(app_env):
    from newsclf import manage

    tfidf = next(p for p in app_env["runs_dir"].iterdir() if p.name.endswith("-tfidf"))
    manage.archive(tfidf.name, app_env["runs_dir"])
    at = run_page("app.py")
    assert len(at.dataframe[0].value) == 2
    at = run_page("pages/3_Results.py")
    assert not any(o.startswith(tfidf.name) for o in at.multiselect(key="results.runs").options)
    at.checkbox(key="frame.show_archived").check().run()
    assert any(o.startswith(tfidf.name) for o in at.multiselect(key="results.runs").options)
