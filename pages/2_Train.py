"""Train: a form built from the config defaults and the study's presets; a live panel of every job."""
from __future__ import annotations

import streamlit as st

from newsclf import data
from newsclf.ui import cache, frame, jobs_view, train_form

frame.page_setup("Train", ":material/model_training:")
st.title("Train")

have_corpus = data.corpus_available(cache.data_home())
if not have_corpus:
    st.warning("The corpus is missing, so a job could not train: import it on the Home page (tab **Import a "
               "local archive**), then come back.", icon=":material/warning:")
    frame.nav_link("app.py", "Go to Home to import the corpus", ":material/home:")

with st.container(border=True):
    st.subheader("New job")
    train_form.render_train_form(have_corpus)

st.subheader("Jobs")
jobs_view.render_jobs_panel()
