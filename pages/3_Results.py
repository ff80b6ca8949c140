"""Results: compare finished runs (table, curves, one large confusion matrix, per-class metrics,
efficiency, strategies) and manage runs (name, tags, note, archive, delete, clone, config diff)."""
from __future__ import annotations

import streamlit as st

from newsclf import compare, plots
from newsclf.models import get_family
from newsclf.ui import cache, compare_view, frame, results_view, runs_view, study_view

frame.page_setup("Results", ":material/monitoring:")
st.title("Results")

by_id = frame.finished_by_id_or_stop("the Results page")
names = frame.run_labels(by_id.values())
runs = list(by_id.values())
chosen = st.multiselect("Runs to compare", list(by_id), default=list(by_id)[:4], format_func=lambda i: names[i],
                        key="results.runs")
if not chosen:
    st.info("Pick one or more runs above.", icon=":material/info:")
    runs_view.render_runs_manager()
    st.stop()
picked = [by_id[i] for i in chosen]

# ---- comparison table ------------------------------------------------------------------------
st.subheader("Comparison")
table = results_view.render_comparison_table(picked)
with st.expander("Significance of every pair (McNemar, Holm-adjusted; paired bootstrap CIs)", expanded=len(chosen) >= 2):
    compare_view.render_pairwise(chosen, "test", key="results")

# ---- curves -----------------------------------------------------------------------------------
st.subheader("Training curves")
c1, c2, c3 = st.columns([2, 2, 1])
axis = c1.radio("x axis", ["epoch", "step", "time_s"], horizontal=True, key="results.curve_x",
                format_func=lambda a: {"epoch": "epoch", "step": "step", "time_s": "wall clock"}[a])
smoothing = c2.slider("Smoothing", 0.0, 0.99, 0.0, 0.01, key="results.smoothing",
                      help="Exponential moving average, as in TensorBoard; the raw curve stays, faint.")
log_y = c3.toggle("Log scale", key="results.log_y")
events = {r.run_id: cache.load_metrics(r.path) for r in picked}
epochs = {i: compare.epoch_frame(e) for i, e in events.items()}
looped = [r.run_id for r in picked if get_family(r.model).trained_by_loop]  # fitted-once models log no steps
steps = {i: compare.step_frame(events[i]) for i in looped}
no_steps = "no per-step loss for this model" if len(picked) == 1 else "no per-step loss for these models"
charts = [("loss", steps, "train loss per step", no_steps)] if axis != "epoch" else []
charts += [("train_loss", {i: epochs[i] for i in looped}, "train loss per epoch", no_steps),
           ("val_loss", epochs, "val loss", None), ("val_acc", epochs, "val acc", None)]
for col, (metric, curves, title, empty) in zip(st.columns(len(charts)), charts):
    with col:
        st.plotly_chart(plots.plot_curves(curves, metric, title=title, x=axis, smoothing=smoothing, log_y=log_y,
                                          empty_note=empty), width="stretch", key=f"results.curve.{metric}")

# ---- confusion matrix ----------------------------------------------------------------------------
st.subheader("Confusion matrix")
c1, c2, c3, c4 = st.columns([3, 3, 1.2, 1.2])
cm_run = c1.selectbox("Run", chosen, format_func=lambda i: names[i], key="results.cm_run")
other_choices = [None, *[i for i in chosen if i != cm_run]]
cm_other = c2.selectbox("Difference with (A - B)", other_choices, key="results.cm_other",
                        format_func=lambda i: "no difference matrix" if i is None else names[i])
split = c3.radio("Split", ["test", "val"], horizontal=True, key="results.split")
counts_mode = c4.toggle("Counts", key="results.counts", help="Counts instead of row shares (recall on the diagonal).")
run = by_id[cm_run]
labels = compare.class_names(run, split)
matrix = compare.split_report(run, split).get("confusion")
clicked = None
if not matrix:
    st.caption(f"{cm_run}: no confusion matrix for {split}.")
else:
    zmax = max((max(max(row) for row in compare.split_report(r, split).get("confusion") or [[0]]) for r in picked),
               default=None)  # one colour scale for every compared run
    event = st.plotly_chart(plots.plot_confusion(matrix, labels, f"{names[cm_run]} — {split}", not counts_mode, zmax),
                            width="stretch", key=f"results.cm.{cm_run}.{split}", on_select="rerun",
                            selection_mode="points")
    for point in (event or {}).get("selection", {}).get("points", []) if event else []:
        clicked = compare.cell_from_point(point, len(labels)) or clicked
    if cm_other is not None:
        other_matrix = compare.split_report(by_id[cm_other], split).get("confusion")
        if other_matrix and len(other_matrix) == len(matrix):
            st.plotly_chart(plots.plot_confusion_difference(matrix, other_matrix, labels,
                                                            f"A - B: {names[cm_run]} minus {names[cm_other]}",
                                                            not counts_mode),
                            width="stretch", key=f"results.cmdiff.{cm_run}.{cm_other}.{split}")
        else:
            st.caption("The two runs do not share a confusion matrix of the same classes.")

    results_view.render_cell_documents(run, cm_run, matrix, labels, split, clicked)
    if cm_other is not None:
        st.markdown(f"**Is A really better than B?** ({frame.plain(names[cm_run])} vs {frame.plain(names[cm_other])})")
        compare_view.render_paired(cm_run, cm_other, split, key="results.paired")

# ---- per-class metrics ---------------------------------------------------------------------------
st.subheader(f"Per-class metrics ({split})")
st.caption("Click a column header to sort." + (" F1 B is the difference run's." if cm_other else ""))
per_class = compare.per_class_table(run, split, by_id[cm_other] if cm_other else None)
st.dataframe(per_class, hide_index=True, width="stretch", key="results.per_class",
             column_config={c: st.column_config.NumberColumn(format="%.3f")
                            for c in ("precision", "recall", "F1", "F1 B", "F1 A - B")})
per_run = {names[r.run_id]: compare.split_report(r, split).get("per_class", []) for r in picked}
st.plotly_chart(plots.plot_per_class_f1({k: v for k, v in per_run.items() if v}), width="stretch", key="results.f1")

# ---- efficiency -----------------------------------------------------------------------------------
st.subheader("Efficiency")
left, right = st.columns(2)
with left:
    st.plotly_chart(plots.plot_efficiency(table, compare.PARAMS), width="stretch", key="results.eff.params")
with right:
    st.plotly_chart(plots.plot_efficiency(table, compare.LATENCY), width="stretch", key="results.eff.latency")
if len(chosen) >= 2:
    c1, c2 = st.columns(2)
    run_a = c1.selectbox("Run A", chosen, index=0, key="results.eff.a", format_func=lambda i: names[i])
    run_b = c2.selectbox("Run B", chosen, index=1, key="results.eff.b", format_func=lambda i: names[i])
    st.dataframe(frame.text_table(compare.efficiency_ratios(table, run_a, run_b)), hide_index=True, width="stretch")
else:
    st.caption("Choose two runs to see the ratios between them.")

# ---- fine-tuning strategies -------------------------------------------------------------------------
strategies = compare.strategies_table(runs)
if not strategies.empty:
    st.subheader("Fine-tuning strategies")
    st.dataframe(frame.text_table(strategies), hide_index=True, width="stretch")

st.subheader("The study: our numbers beside the published ones")
study_view.render_study(runs)
runs_view.render_runs_manager()
