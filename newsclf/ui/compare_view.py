"""Comparison sections that conclude: paired significance of two runs, pairwise tests of many,
calibration, error slices by length, top confusions, and the exported report.

The numbers come from newsclf.significance / calibration / slices / report through the cached
loaders of newsclf.ui.cache; figures from newsclf.plots.compare; this module only renders.
"""
from __future__ import annotations

import streamlit as st

from newsclf import calibration, compare
from newsclf.plots import compare as plots_compare
from newsclf.data import DataError
from newsclf.errors import UserError
from newsclf.ui import cache
from newsclf.ui.frame import plain, text_table

PCT = st.column_config.NumberColumn(format="%.4f")


def _points(iv) -> str:
    return f"{iv.estimate * 100:+.2f} points (95 % CI {iv.low * 100:+.2f} to {iv.high * 100:+.2f})"


def render_paired(run_a: str, run_b: str, split: str, key: str) -> None:
    """Is A really better than B on the same documents? Verdict, McNemar p, accuracy and macro-F1
    differences with bootstrap intervals, per-class F1 differences (sortable table + forest plot)."""
    try:
        cmp = cache.paired(run_a, run_b, split)
    except cache.RUN_ERRORS as exc:
        st.warning(f"No paired test: {plain(exc)}", icon=":material/warning:")
        return
    (st.success if cmp.significant() else st.info)(plain(cmp.verdict()), icon=":material/balance:")
    c1, c2, c3 = st.columns(3)
    c1.metric("McNemar p (exact)", f"{cmp.mcnemar_p:.3g}", help=f"A right only: {cmp.only_a}, B right only: {cmp.only_b}")
    c2.metric("Accuracy A - B", f"{cmp.acc_diff.estimate * 100:+.2f} pts",
              help="95 % paired bootstrap CI: " + _points(cmp.acc_diff))
    c3.metric("Macro-F1 A - B", f"{cmp.f1_macro_diff.estimate * 100:+.2f} pts",
              help="95 % paired bootstrap CI: " + _points(cmp.f1_macro_diff))
    st.caption(f"A = {plain(run_a)}, B = {plain(run_b)}, {cmp.n} {split} documents. Accuracy: {_points(cmp.acc_diff)}; "
               f"macro-F1: {_points(cmp.f1_macro_diff)}. {cmp.n_boot} paired bootstrap resamples (seed {cmp.seed}).")
    per_class = cmp.per_class_frame()
    if len(per_class):
        top = per_class.loc[per_class["diff"].abs().idxmax()]
        beyond = int(((per_class["low"] > 0) | (per_class["high"] < 0)).sum())
        st.caption(f"Largest per-class F1 gap: {plain(top['label'])} ({top['diff']:+.3f}, 95 % CI {top['low']:+.3f} to "
                   f"{top['high']:+.3f}); {beyond} of {len(per_class)} classes have an interval that excludes 0.")
    with st.expander("Per-class F1 differences (A - B) with 95 % intervals"):
        per = cmp.per_class_frame().rename(columns={"f1_a": "F1 A", "f1_b": "F1 B", "diff": "A - B", "low": "CI low",
                                                    "high": "CI high"})
        per["CI excludes 0"] = (per["CI low"] > 0) | (per["CI high"] < 0)
        st.dataframe(per, hide_index=True, width="stretch", key=f"{key}.per_class",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("F1 A", "F1 B", "A - B", "CI low", "CI high")})
        st.plotly_chart(plots_compare.plot_per_class_diff(cmp.per_class_frame(), "A", "B"), width="stretch",
                        key=f"{key}.forest")


def render_pairwise(run_ids: list[str], split: str, key: str) -> None:
    """Every pair of the picked runs: differences with intervals, McNemar p and Holm-adjusted p."""
    if len(run_ids) < 2:
        st.caption("Pick two or more runs for the pairwise tests.")
        return
    try:
        pairs = cache.pairwise(run_ids, split)
    except cache.RUN_ERRORS as exc:
        st.warning(f"No pairwise tests: {plain(exc)}", icon=":material/warning:")
        return
    cols = ["run_a", "run_b", "acc_diff", "acc_diff_low", "acc_diff_high", "f1_macro_diff", "only_a", "only_b",
            "mcnemar_p", "mcnemar_p_holm", "verdict"]
    st.dataframe(pairs[cols], hide_index=True, width="stretch", key=f"{key}.pairwise",
                 column_config={**{c: st.column_config.NumberColumn(format="%+.4f")
                                   for c in ("acc_diff", "acc_diff_low", "acc_diff_high", "f1_macro_diff")},
                                "mcnemar_p": st.column_config.NumberColumn(format="%.3g"),
                                "mcnemar_p_holm": st.column_config.NumberColumn("Holm p", format="%.3g")})
    st.caption("Differences are A - B (shares); Holm p adjusts McNemar's p for testing every pair at once.")
    st.plotly_chart(plots_compare.plot_pairwise(pairs), width="stretch", key=f"{key}.pairwise_plot")


def render_calibration(run_ids: list[str], key: str) -> None:
    """ECE and a reliability diagram per run (test split), which runs are over/under-confident, and the
    button that fits a temperature on validation and stores it with each run (argmax unchanged)."""
    if st.button("Fit temperature on validation", key=f"{key}.fit_t", icon=":material/thermostat:",
                 help="Temperature scaling fitted on each run's validation predictions; stored with the run "
                      "(calibration.json). Predicted classes never change, only the confidence."):
        for run_id in run_ids:
            try:
                cal = calibration.calibrate_run(cache.runs_dir() / run_id)
            except (UserError, *cache.RUN_ERRORS) as exc:
                st.error(plain(exc))
                continue
            st.success(f"{plain(run_id)}: T = {cal.temperature:.2f}; test ECE {cal.ece_test:.3f} → "
                       f"{cal.ece_test_scaled:.3f} (argmax unchanged)")
    diagrams, temps = [], {}
    for run_id in run_ids:
        try:
            diagrams.append(cache.reliability(run_id, "test"))
            temps[run_id] = calibration.load_temperature(cache.runs_dir() / run_id)
        except cache.RUN_ERRORS as exc:
            st.caption(f"{plain(run_id)}: {plain(exc)}")
    if not diagrams:
        return
    st.dataframe(text_table(compare.calibration_frame(diagrams, temps)), hide_index=True, width="stretch",
                 key=f"{key}.calibration")
    st.plotly_chart(plots_compare.plot_reliability(diagrams), width="stretch", key=f"{key}.reliability")


def render_slices(run_ids: list[str], labels_of: dict, key: str) -> None:
    """Accuracy by document length (words) with the share of words each model never saw, and the
    most frequent mistakes per run."""
    try:
        lengths = cache.length_slices(run_ids, "test")
    except (DataError, *cache.RUN_ERRORS) as exc:
        st.caption(f"Length slices need the corpus: {plain(exc)}")
    else:
        st.plotly_chart(plots_compare.plot_length_accuracy(lengths), width="stretch", key=f"{key}.lengths")
        st.dataframe(text_table(lengths.drop(columns=["low", "high"])), hide_index=True, width="stretch",
                     key=f"{key}.length_table")
        st.caption("unseen share: words beyond a model's max_len tokens (approximated from words: a lower bound).")
    from newsclf.slices import top_confusions

    for run_id in run_ids:
        preds = cache.load_predictions(run_id, "test")
        if preds is not None:
            st.markdown(f"**Top confused class pairs — {plain(run_id)}**")
            st.dataframe(top_confusions(preds, labels_of[run_id], k=8), hide_index=True, width="stretch",
                         key=f"{key}.top.{run_id}", column_config={"share_of_true": st.column_config.NumberColumn(format="%.3f")})


def render_report_download(run_ids: list[str], key: str) -> None:
    """The files of `python -m newsclf report` for the picked runs, zipped, offered for download."""
    if st.button("Build the report (HTML, CSV, Markdown)", key=f"{key}.build", icon=":material/description:"):
        try:
            st.session_state[f"{key}.zip"] = (tuple(run_ids), cache.report_zip(run_ids))
        except (UserError, *cache.RUN_ERRORS) as exc:
            st.error(plain(exc))
    built = st.session_state.get(f"{key}.zip")
    if built and built[0] == tuple(run_ids):
        st.download_button("Download report.zip", built[1], file_name="newsclf-report.zip", mime="application/zip",
                           key=f"{key}.download", icon=":material/download:")
