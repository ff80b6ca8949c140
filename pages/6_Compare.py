"""Compare: comparisons that conclude — paired significance, pairwise tests (Holm), calibration, error
slices, ensembles, header leakage, and the exported report of the picked runs."""
from __future__ import annotations

import streamlit as st

from newsclf import compare, plots
from newsclf.ui import compare_view, ensemble_view, frame, leakage_view

frame.page_setup("Compare", ":material/compare_arrows:")
st.title("Compare")

by_id = frame.finished_by_id_or_stop("the Compare page")
names = frame.run_labels(by_id.values())
runs = list(by_id.values())
if "compare.runs" not in st.session_state:  # deep link: ?runs=ID&runs=ID
    st.session_state["compare.runs"] = [r for r in st.query_params.get_all("runs") if r in by_id] or list(by_id)[:3]
chosen = st.multiselect("Runs to compare", list(by_id), format_func=lambda i: names[i], key="compare.runs")
if not chosen:
    st.info("Pick one or more runs above.", icon=":material/info:")
    st.stop()
labels_of = {i: compare.class_names(by_id[i]) for i in chosen}

st.subheader("A vs B: is the difference real?")
if len(chosen) >= 2:
    c1, c2, c3 = st.columns([3, 3, 1])
    run_a = c1.selectbox("Run A", chosen, index=0, format_func=lambda i: names[i], key="compare.a")
    run_b = c2.selectbox("Run B", [i for i in chosen if i != run_a], format_func=lambda i: names[i], key="compare.b")
    split = c3.radio("Split", ["test", "val"], horizontal=True, key="compare.split")
    compare_view.render_paired(run_a, run_b, split, key="compare.paired")
    ma = compare.split_report(by_id[run_a], split).get("confusion")
    mb = compare.split_report(by_id[run_b], split).get("confusion")
    if ma and mb and len(ma) == len(mb):
        with st.expander("Confusion difference (A - B) — the Results page's difference matrix"):
            st.plotly_chart(plots.plot_confusion_difference(ma, mb, labels_of[run_a], f"A - B: {names[run_a]} minus "
                                                            f"{names[run_b]}", True), width="stretch", key="compare.cmdiff")
    st.markdown("**Every pair of the picked runs**")
    compare_view.render_pairwise(chosen, split, key="compare")
else:
    st.caption("Pick two or more runs for paired tests.")

st.subheader("Calibration")
compare_view.render_calibration(chosen, key="compare")

st.subheader("Error slices")
compare_view.render_slices(chosen, labels_of, key="compare.slices")

st.subheader("Ensembles")
ensemble_view.render_ensemble_form(runs, names, key="compare.ensemble")

st.subheader("Header leakage (seed vs raw protocol)")
leakage_view.render_leakage(runs, names, key="compare.leakage")

st.subheader("Report")
st.caption("The same files as `python -m newsclf report` for the picked runs, in one zip.")
compare_view.render_report_download(chosen, key="compare.report")
