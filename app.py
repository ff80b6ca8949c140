"""Home: corpus status, device, leaderboard, job queue at a glance and the CPU quick start.

Run with `streamlit run app.py`; pages/ holds the other pages (file-based discovery).
"""
from __future__ import annotations

import streamlit as st

from newsclf import jobs
from newsclf.config import PRESETS, ConfigError, RunConfig
from newsclf.ui import common, jobs_view
from newsclf.ui.data_view import render_corpus_status
from newsclf.ui.tables import comparison_table

QUICK_START = ("TF-IDF + complement NB (baseline)", "BiLSTM small (CPU quick start)")

common.page_setup("Home", ":material/newspaper:")
st.title("newsclf — 20 Newsgroups classifiers")
st.caption("Train, compare and explain TF-IDF, BiLSTM and transformer classifiers.")

left, right = st.columns([3, 2])
with left:
    st.subheader("Corpus")
    have_data = render_corpus_status()
with right:
    st.subheader("Device")
    dev = common.device_info()
    st.write(f"**CPU:** {common.escape(dev['cpu'])}")
    st.write("**GPUs:** " + (", ".join(dev["gpus"]) if dev["gpus"] else "none visible (jobs run on the CPU)"))

st.subheader("Quick start")
st.write("Queue the two fast CPU models (TF-IDF and a small BiLSTM) to have something to compare within minutes.")
if st.button("Queue TF-IDF + small BiLSTM", type="primary", disabled=not have_data, key="home.quickstart"):
    queued = []
    for name in QUICK_START:
        try:
            queued.append(jobs.submit(RunConfig(**PRESETS[name]), common.runs_dir(), gpus=None).id)
        except (ConfigError, OSError, ValueError) as exc:
            st.error(f"{name}: {exc}")
    if queued:
        st.success("Queued " + ", ".join(f"`{q}`" for q in queued) + ". Follow them on the Train page.")
        common.nav_link("pages/2_Train.py", "Open the live panel", ":material/model_training:")
if not have_data:
    st.caption("Get the corpus first (above).")

st.subheader("Leaderboard")
runs = common.finished()
if runs:
    table = comparison_table(runs).sort_values("test acc", ascending=False)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"val acc": st.column_config.NumberColumn(format="%.4f"),
                                "test acc": st.column_config.NumberColumn(format="%.4f"),
                                "macro F1": st.column_config.NumberColumn(format="%.4f"),
                                "train s": st.column_config.NumberColumn(format="%.1f"),
                                "inference ms/doc": st.column_config.NumberColumn(format="%.3f")})
else:
    st.info("No finished runs yet: use the quick start above or the Train page.", icon=":material/info:")

st.subheader("Job queue")
jobs_view.render_queue_glance()
common.nav_link("pages/2_Train.py", "Train page (live panel)", ":material/model_training:")
