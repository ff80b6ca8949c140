"""Train: a form built from the config defaults and the study's presets; a live panel of every job."""
from __future__ import annotations

import streamlit as st

from newsclf import data
from newsclf.ui import cache, frame, jobs_view, train_form

frame.page_setup("Train", ":material/model_training:")
st.title("Train")

if not data.corpus_available(cache.data_home()):
    st.warning("The corpus is missing, so jobs would fail: get it on the Home page first.", icon=":material/warning:")
    frame.nav_link("app.py", "Go to Home", ":material/home:")

with st.container(border=True):
    st.subheader("New job")
    train_form.render_train_form()

st.subheader("Jobs")
jobs_view.render_jobs_panel()
