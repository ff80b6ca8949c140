"""Errors: a run's misclassifications (filterable), where two runs disagree, and the document itself."""
from __future__ import annotations

import importlib.util

import streamlit as st

from newsclf import store
from newsclf.ui import common, tables

common.page_setup("Errors", ":material/search:")
st.title("Errors")

by_id = common.finished_by_id_or_stop("the Errors page")

c1, c2 = st.columns([3, 1])
run_id = c1.selectbox("Run", list(by_id), format_func=lambda i: by_id[i].label, key="errors.run")
split = c2.radio("Split", ["test", "val"], horizontal=True, key="errors.split")
run = by_id[run_id]
labels = (run.results or {}).get("label_names")
preds = common.load_predictions(run_id, split)
if preds is None or not labels:
    try:
        labels = labels or store.load_labels(run.path)
    except store.RunNotFoundError:
        labels = None
if preds is None or not labels:
    st.warning(f"Predictions of {run_id} on {split} are missing: the run was deleted or is being re-evaluated.",
               icon=":material/warning:")
    st.stop()
frame = tables.predictions_frame(preds, labels)
protocol = run.config.get("protocol", "seed")


def _show(doc_id: str, rows: dict[str, dict]) -> None:
    """The document's text with each run's prediction."""
    st.markdown(f"**Document `{common.escape(doc_id)}`**")
    cols = st.columns(len(rows))
    for col, (name, row) in zip(cols, rows.items()):
        ok = ":material/check_circle:" if row["predicted"] == row["true"] else ":material/cancel:"
        col.markdown(f"{ok} **{common.escape(name)}**: {common.escape(row['predicted'])} "
                     f"({row['confidence']:.1%}); true: {common.escape(row['true'])}")
    text = common.documents([doc_id], protocol).get(doc_id)
    common.show_document(text if text is not None else "(text unavailable: the corpus is missing)")


tab_errors, tab_disagree = st.tabs(["Misclassified", "Two models disagree"])
selected_doc, selected_rows, other_run = None, {}, None

with tab_errors:
    c1, c2, c3 = st.columns(3)
    true_f = c1.multiselect("True class", labels, key="errors.true")
    pred_f = c2.multiselect("Predicted class", labels, key="errors.pred")
    conf = c3.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="errors.conf")
    errors = tables.errors_frame(frame, true_f, pred_f, conf)
    acc = float(frame["correct"].mean()) if len(frame) else 0.0
    st.caption(f"{len(errors)} of {int((~frame['correct']).sum())} errors shown · accuracy {acc:.4f} on {len(frame)} documents")
    if errors.empty:
        st.info("No misclassified documents match these filters.", icon=":material/info:")
    else:
        event = st.dataframe(errors, hide_index=True, width="stretch", height=300, on_select="rerun",
                             selection_mode="single-row", key=f"errors.table.{run_id}.{split}",
                             column_config={"confidence": st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")})
        rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
        ids = errors["doc_id"].tolist()
        default = ids.index(ids[rows[0]]) if rows and rows[0] < len(ids) else 0
        doc_id = st.selectbox("Document", ids, index=default, key=f"errors.doc.{run_id}.{split}.{default}")
        row = errors.set_index("doc_id").loc[doc_id]
        _show(doc_id, {run.label: row})
        selected_doc = doc_id

with tab_disagree:
    others = [i for i in by_id if i != run_id]
    if not others:
        st.info("Only one finished run: train another to compare.", icon=":material/info:")
    else:
        other_run = st.selectbox("Compare with", others, format_func=lambda i: by_id[i].label, key="errors.other")
        other = common.load_predictions(other_run, split)
        other_labels = (by_id[other_run].results or {}).get("label_names") or labels
        if other is None:
            st.warning("That run's predictions are missing.", icon=":material/warning:")
        else:
            b = tables.predictions_frame(other, other_labels)
            dis = tables.disagreement_frame(frame, b, "A", "B")
            st.caption(f"A = {run_id}, B = {other_run}: they disagree on {len(dis)} of {len(frame)} documents "
                       f"(A right: {(dis['right'] == 'A').sum()}, B right: {(dis['right'] == 'B').sum()}, "
                       f"neither: {(dis['right'] == 'neither').sum()})")
            if dis.empty:
                st.success("The two runs agree on every document.", icon=":material/handshake:")
            else:
                who = st.radio("Show", ["all", "A right", "B right", "neither"], horizontal=True, key="errors.who")
                if who != "all":
                    dis = dis[dis["right"] == who.split()[0]].reset_index(drop=True)
                st.dataframe(dis, hide_index=True, width="stretch", height=300, key=f"errors.dis.{run_id}.{other_run}")
                if not dis.empty:
                    doc_id = st.selectbox("Document", dis["doc_id"].tolist(), key="errors.dis_doc")
                    a_row = frame.set_index("doc_id").loc[doc_id]
                    b_row = b.set_index("doc_id").loc[doc_id]
                    _show(doc_id, {f"A {by_id[run_id].label}": a_row, f"B {by_id[other_run].label}": b_row})

# ---- explanations: the interpretability issue plugs in here -------------------------------------
# newsclf/ui/explain_view.py renders attributions for the chosen run(s) on the selected document.
if selected_doc and importlib.util.find_spec("newsclf.ui.explain_view") is not None:
    from newsclf.ui import explain_view

    text = common.documents([selected_doc], protocol).get(selected_doc)
    if text:
        st.subheader("Why? Explanations")
        try:
            predictors = [common.get_predictor(i) for i in [run_id, other_run] if i]
        except common.RUN_ERRORS as exc:
            st.warning(f"Cannot load the model: {exc}")
        else:
            explain_view.render_explanations(predictors, text, key="errors",
                                             locks=[common.predictor_lock(p) for p in predictors])
