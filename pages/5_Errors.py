"""Errors: a run's misclassifications (filterable), where two runs disagree, and why (the selected document)."""
from __future__ import annotations

import streamlit as st

from newsclf import compare, plots
from newsclf.ui import cache, compare_view, explain_view, frame
from newsclf.ui.errors_view import pick_document, show_document

frame.page_setup("Errors", ":material/search:")
st.title("Errors")

by_id = frame.finished_by_id_or_stop("the Errors page")
names = frame.run_labels(by_id.values())

c1, c2 = st.columns([3, 1])
run_id = c1.selectbox("Run", list(by_id), format_func=lambda i: names[i], key="errors.run")
split = c2.radio("Split", ["test", "val"], horizontal=True, key="errors.split")
run = by_id[run_id]
labels = compare.class_names(run, split)
preds = cache.load_predictions(run_id, split)
if preds is None or not labels:
    st.warning(f"Predictions of {run_id} on {split} are missing: the run was deleted or is being re-evaluated.",
               icon=":material/warning:")
    st.stop()
table = compare.predictions_frame(preds, labels)
protocol = run.config.get("protocol", "seed")


tab_errors, tab_disagree = st.tabs(["Misclassified", "Two models disagree"])
picked: dict[str, tuple[str, list[str]]] = {}  # source tab -> (doc id, runs to explain)

with tab_errors:
    c1, c2, c3 = st.columns(3)
    true_f = c1.multiselect("True class", labels, key="errors.true")
    pred_f = c2.multiselect("Predicted class", labels, key="errors.pred")
    conf = c3.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="errors.conf")
    query = st.text_input("Search the documents' text", key="errors.search", placeholder="words that must all appear",
                          help="Case-insensitive; every word must appear in the document.")
    errors = compare.errors_frame(table, true_f, pred_f, conf)
    if query.strip():
        errors = compare.search_documents(errors, cache.split_texts(split, protocol), query)
    acc = float(table["correct"].mean()) if len(table) else 0.0
    st.caption(f"{len(errors)} of {int((~table['correct']).sum())} errors shown · accuracy {acc:.4f} on {len(table)} documents")
    if errors.empty:
        st.info("No misclassified documents match these filters.", icon=":material/info:")
    else:
        doc_id = pick_document(errors, "errors", f"errors.err.{run_id}.{split}")
        show_document(doc_id, {names[run_id]: errors.set_index("doc_id").loc[doc_id]}, protocol)
        picked["errors"] = (doc_id, [run_id])

with tab_disagree:
    others = [i for i in by_id if i != run_id]
    other_run = st.selectbox("Compare with", others, format_func=lambda i: names[i], key="errors.other") if others else None
    other = cache.load_predictions(other_run, split) if other_run else None
    if not others:
        st.info("Only one finished run: train another to compare.", icon=":material/info:")
    elif other is None:
        st.warning("That run's predictions are missing.", icon=":material/warning:")
    else:
        b = compare.predictions_frame(other, compare.class_names(by_id[other_run], split) or labels)
        dis = compare.disagreement_frame(table, b, "A", "B")
        agree = compare.agreement_frame(table, b)
        st.caption(f"A = {run_id}, B = {other_run}: they disagree on {len(dis)} of {len(table)} documents "
                   f"(A right: {(dis['right'] == 'A').sum()}, B right: {(dis['right'] == 'B').sum()}, "
                   f"neither: {(dis['right'] == 'neither').sum()})")
        compare_view.render_paired(run_id, other_run, split, key="errors.paired")
        cells = ["disagree", *compare.AGREEMENT_CELLS.values()]
        left, right = st.columns([2, 3])
        with left:
            chart_key = f"errors.agree.{run_id}.{other_run}.{split}"
            event = st.plotly_chart(plots.plot_agreement(compare.agreement_counts(agree), "A", "B"), width="stretch",
                                    key=chart_key, on_select="rerun", selection_mode="points")
            points = (event or {}).get("selection", {}).get("points", []) if event else []
            clicked = [p.get("customdata") for p in points if isinstance(p.get("customdata"), (list, tuple))]
            seen = st.session_state.setdefault("errors.seen_cells", {})
            if clicked and seen.get(chart_key) != clicked[0][:2]:  # a new click on a cell: it picks the list
                seen[chart_key] = list(clicked[0][:2])
                names = [["both right", "only A right"], ["only B right", "both wrong"]]
                st.session_state["errors.cell"] = names[int(clicked[0][0])][int(clicked[0][1])]
        with right:
            cell = st.radio("Documents to list (or click a cell)", cells, horizontal=True, key="errors.cell",
                            format_func=lambda c: "A and B disagree" if c == "disagree" else c)
            search = st.text_input("Search the documents' text", key="errors.dis_search",
                                   placeholder="words that must all appear")
        rows = dis if cell == "disagree" else agree[agree["cell"] == cell].drop(columns="cell").reset_index(drop=True)
        if search.strip():
            rows = compare.search_documents(rows, cache.split_texts(split, protocol), search)
        if rows.empty:
            st.info("No documents in this cell" + (" match the search." if search.strip() else "."),
                    icon=":material/info:")
        else:
            doc_id = pick_document(rows, "disagree", f"errors.dis.{run_id}.{other_run}.{split}.{cell}")
            show_document(doc_id, {f"A {names[run_id]}": table.set_index("doc_id").loc[doc_id],
                                   f"B {names[other_run]}": b.set_index("doc_id").loc[doc_id]}, protocol)
            picked["disagree"] = (doc_id, [run_id, other_run])

source = st.session_state.get("errors.focus", "errors")
explained = picked.get(source) or next(iter(picked.values()), None)
text = cache.documents([explained[0]], protocol).get(explained[0]) if explained else None
if text:
    st.subheader("Why? Explanations")
    st.caption(f"Explaining document {frame.plain(explained[0])} (the row selected in the "
               f"{'Two models disagree' if explained is picked.get('disagree') else 'Misclassified'} tab).")
    try:
        predictors = [cache.get_predictor(i) for i in explained[1]]
    except cache.RUN_ERRORS as exc:
        st.warning(f"Cannot load the model: {frame.plain(exc)}")
    else:
        explain_view.render_explanations(predictors, text, key="errors")
