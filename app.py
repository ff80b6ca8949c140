"""Home: corpus status, device, leaderboard, job queue at a glance and the CPU quick start.

Run with `streamlit run app.py`; pages/ holds the other pages (file-based discovery).
"""
from __future__ import annotations

import streamlit as st

from newsclf import compare, jobs, manage
from newsclf.config import PRESETS, ConfigError, RunConfig
from newsclf.ui import cache, frame, jobs_view
from newsclf.ui.data_view import render_corpus_status

QUICK_START = ("TF-IDF + complement NB (baseline)", "BiLSTM small (CPU quick start)")
FORMATS = {compare.VAL_ACC: "%.4f", compare.TEST_ACC: "%.4f", compare.MACRO_F1: "%.4f", compare.TRAIN_S: "%.1f",
           compare.LATENCY: "%.3f"}

frame.page_setup("Home", ":material/newspaper:")
st.title("newsclf — 20 Newsgroups classifiers")
st.caption("Train, compare and explain TF-IDF, BiLSTM and transformer classifiers.")

left, right = st.columns([3, 2])
with left:
    st.subheader("Corpus")
    have_data = render_corpus_status()
with right:
    st.subheader("Device")
    dev = cache.device_info()
    st.markdown(f"**CPU:** {frame.plain(dev['cpu'])}")
    st.markdown("**GPUs:** " + (frame.plain(", ".join(dev["gpus"])) if dev["gpus"] else "none visible (jobs run on the CPU)"))

st.subheader("Quick start")
st.write("Queue the two fast CPU models (TF-IDF and a small BiLSTM) to have something to compare within minutes.")
if st.button("Queue TF-IDF + small BiLSTM", type="primary", disabled=not have_data, key="home.quickstart"):
    queued = []
    for name in QUICK_START:
        try:
            queued.append(jobs.submit(RunConfig(**PRESETS[name]), cache.runs_dir(), gpus=None).id)
        except (ConfigError, OSError, ValueError) as exc:
            st.error(f"{name}: {frame.plain(exc)}")
    if queued:
        st.success("Queued " + ", ".join(f"`{q}`" for q in queued) + ". Follow them on the Train page.")
        frame.nav_link("pages/2_Train.py", "Open the live panel", ":material/model_training:")
if not have_data:
    st.caption("Get the corpus first (above).")

st.subheader("Leaderboard")
runs = manage.visible(cache.finished())  # archived runs stay off the leaderboard
if runs:
    table = compare.comparison_table(runs).sort_values(compare.TEST_ACC, ascending=False)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format=f) for c, f in FORMATS.items()})
else:
    st.info("No finished runs yet: use the quick start above or the Train page.", icon=":material/info:")

st.subheader("Job queue")
jobs_view.render_queue_glance()
frame.nav_link("pages/2_Train.py", "Train page (live panel)", ":material/model_training:")
