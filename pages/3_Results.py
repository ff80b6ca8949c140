"""Results: compare finished runs (table, curves, confusion matrices, per-class F1, efficiency, strategies)."""
from __future__ import annotations

import streamlit as st

from newsclf import compare, plots
from newsclf.ui import cache, frame

frame.page_setup("Results", ":material/monitoring:")
st.title("Results")

by_id = frame.finished_by_id_or_stop("the Results page")
runs = list(by_id.values())
chosen = st.multiselect("Runs to compare", list(by_id), default=list(by_id)[:4], format_func=lambda i: by_id[i].label,
                        key="results.runs")
if not chosen:
    st.info("Pick one or more runs above.", icon=":material/info:")
    st.stop()
picked = [by_id[i] for i in chosen]

# ---- comparison table ------------------------------------------------------------------------
st.subheader("Comparison")
table = compare.comparison_table(picked)
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.4f")
                            for c in (compare.VAL_ACC, compare.TEST_ACC, compare.MACRO_F1)})
st.download_button("Download CSV", table.to_csv(index=False).encode("utf-8"), file_name="newsclf_comparison.csv",
                   mime="text/csv", key="results.csv")

# ---- curves -----------------------------------------------------------------------------------
st.subheader("Training curves")
curves = {r.run_id: compare.epoch_frame(cache.load_metrics(r.path)) for r in picked}
for col, metric in zip(st.columns(3), ("train_loss", "val_loss", "val_acc")):
    with col:
        st.plotly_chart(plots.plot_curves(curves, metric), width="stretch", key=f"results.curve.{metric}")

# ---- confusion matrices -------------------------------------------------------------------------
st.subheader("Confusion matrices")
c1, c2 = st.columns(2)
split = c1.radio("Split", ["test", "val"], horizontal=True, key="results.split")
normalise = c2.toggle("Row-normalised", key="results.normalise")
shown = picked[:3]
if len(picked) > 3:
    st.caption("Showing the first three chosen runs side by side.")
clicked = None
for col, run in zip(st.columns(len(shown)), shown):
    matrix, names = compare.split_report(run, split).get("confusion"), compare.class_names(run, split)
    with col:
        if not matrix:
            st.caption(f"{run.run_id}: no confusion matrix for {split}.")
            continue
        event = st.plotly_chart(plots.plot_confusion(matrix, names, run.label, normalise), width="stretch",
                                key=f"results.cm.{run.run_id}.{split}", on_select="rerun", selection_mode="points")
        for point in (event or {}).get("selection", {}).get("points", []) if event else []:
            cell = compare.cell_from_point(point, len(names))
            if cell is not None:
                clicked = (run.run_id, *cell)

with st.expander("Documents in a cell (click a cell above, or choose here)", expanded=clicked is not None):
    run_ids = [r.run_id for r in shown]
    cell_run = st.selectbox("Run", run_ids, index=run_ids.index(clicked[0]) if clicked else 0,
                            key="results.cell_run", format_func=lambda i: by_id[i].label)
    names = compare.class_names(by_id[cell_run], split)
    pairs = compare.confusion_pairs(compare.split_report(by_id[cell_run], split).get("confusion", []), names)
    if clicked and clicked[0] == cell_run:
        cell = (clicked[1], clicked[2])
    else:
        counts = {(i, j): n for i, j, n in pairs}
        cell = st.selectbox("Cell (true → predicted)", list(counts), key=f"results.cell.{cell_run}.{split}",
                            format_func=lambda c: f"{names[c[0]]} → {names[c[1]]} ({counts[c]})") if counts else None
    preds = cache.load_predictions(cell_run, split) if cell is not None else None
    if cell is not None and preds is None:
        st.warning("This run's predictions are missing (deleted or being rewritten).")
    elif cell is not None:
        docs = compare.cell_documents(preds, cell[0], cell[1])
        st.markdown(f"**{len(docs)}** documents with true **{frame.plain(names[cell[0]])}** predicted "
                    f"**{frame.plain(names[cell[1]])}**")
        texts = cache.documents([d for d, _ in docs[:10]], by_id[cell_run].config.get("protocol", "seed"))
        for doc_id, conf in docs[:10]:
            with st.expander(f"{frame.plain(doc_id)} — confidence {conf:.2f}"):
                frame.show_document(texts.get(doc_id, "(text unavailable: corpus missing)"), height=200)
        if len(docs) > 10:
            st.caption(f"…and {len(docs) - 10} more.")

# ---- per-class F1 ---------------------------------------------------------------------------------
st.subheader(f"F1 per class ({split})")
per_class = {r.run_id: compare.split_report(r, split).get("per_class", []) for r in picked}
st.plotly_chart(plots.plot_per_class_f1({k: v for k, v in per_class.items() if v}), width="stretch",
                key="results.f1")

# ---- efficiency -----------------------------------------------------------------------------------
st.subheader("Efficiency")
left, right = st.columns(2)
with left:
    st.plotly_chart(plots.plot_efficiency(table, compare.PARAMS), width="stretch", key="results.eff.params")
with right:
    st.plotly_chart(plots.plot_efficiency(table, compare.LATENCY), width="stretch", key="results.eff.latency")
if len(chosen) >= 2:
    c1, c2 = st.columns(2)
    run_a = c1.selectbox("Run A", chosen, index=0, key="results.eff.a", format_func=lambda i: by_id[i].label)
    run_b = c2.selectbox("Run B", chosen, index=1, key="results.eff.b", format_func=lambda i: by_id[i].label)
    st.dataframe(frame.text_table(compare.efficiency_ratios(table, run_a, run_b)), hide_index=True, width="stretch")
else:
    st.caption("Choose two runs to see the ratios between them.")

# ---- fine-tuning strategies -------------------------------------------------------------------------
strategies = compare.strategies_table(runs)
if not strategies.empty:
    st.subheader("Fine-tuning strategies")
    st.dataframe(strategies, hide_index=True, width="stretch")
