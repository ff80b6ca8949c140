"""Dataset: summary tables, class distribution, document lengths, top words, sample documents, splits."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from newsclf import data, plots
from newsclf.config import PROTOCOLS
from newsclf.study_published import split_note
from newsclf.ui import cache, frame



def _number(value) -> str:
    """Whole numbers with thousands separators, others with one decimal ("96.98296..." -> "97.0")."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    return frame.BLANK if value is None else str(value)


frame.page_setup("Dataset", ":material/database:")
st.title("Dataset")
frame.corpus_or_stop("The corpus is not here yet: download or import it on the Home page.")

protocol = st.radio("Protocol", PROTOCOLS, horizontal=True, key="dataset.protocol",
                    help="seed: headers/footers/quotes removed, short documents dropped; raw: as published")
try:
    stats = cache.corpus_stats(protocol)
    lengths = cache.doc_lengths(protocol)
except data.DataError as exc:
    st.error(f"Cannot read the corpus: {frame.plain(exc)}")
    st.stop()

st.subheader("Summary")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Documents (train + test)", f"{stats['n_docs']:,}")
c2.metric("Words", f"{stats['total_words']:,}")
c3.metric("Characters", f"{stats['total_chars']:,}")
c4.metric("Classes", len(stats["class_counts"]))
left, mid, right = st.columns(3)
with left:
    st.caption("Documents per class")
    ccs = stats["class_count_stats"]
    st.dataframe(pd.DataFrame([{"statistic": k, "value": _number(v)} for k, v in ccs.items()]),
                 hide_index=True, width="stretch")
with mid:
    st.caption("Words per document (whitespace tokens)")
    st.dataframe(pd.DataFrame([{"statistic": k, "value": _number(v)} for k, v in stats["words_per_doc"].items()]),
                 hide_index=True, width="stretch")
with right:
    st.caption(f"Split sizes ({protocol} protocol)")
    st.dataframe(pd.DataFrame([{"split": k, "documents": v} for k, v in stats["splits"].items()]),
                 hide_index=True, width="stretch")
    if protocol == "seed":
        st.caption(split_note(stats["splits"]) + " Details: the README, \"The seed protocol\".")

left, right = st.columns(2)
with left:
    st.plotly_chart(plots.plot_class_distribution(stats["class_counts"]), width="stretch", key="dataset.classes")
with right:
    st.plotly_chart(plots.plot_length_histogram(lengths), width="stretch", key="dataset.lengths")
    st.plotly_chart(plots.plot_split_sizes(stats["splits"], f"Split sizes ({protocol})"), width="stretch",
                    key="dataset.splits")

st.subheader("Top words per class")
labels = list(stats["class_counts"])
top = stats["top_words"]
label = st.selectbox("Class", labels, key="dataset.top_class")
left, right = st.columns([2, 3])
with left:
    st.plotly_chart(plots.plot_top_words(top.get(label, []), f"Top words: {label}"), width="stretch",
                    key="dataset.topwords")
with right:
    st.dataframe(pd.DataFrame([{"class": k, "top words": ", ".join(w for w, _ in v)} for k, v in top.items()]),
                 hide_index=True, width="stretch", height=560)

st.subheader("Sample documents")
c1, c2, c3 = st.columns([3, 1, 1])
sample_label = c1.selectbox("Class", labels, key="dataset.sample_class")
split = c2.selectbox("Split", ["train", "val", "test"], key="dataset.sample_split")
n = c3.number_input("How many", min_value=1, max_value=20, value=3, key="dataset.sample_n")
if "dataset.seed" not in st.session_state:
    st.session_state["dataset.seed"] = -1  # nothing shown yet: the first visit does not load the whole corpus
shown = st.session_state["dataset.seed"] >= 0
if st.button("Show others" if shown else "Show documents", key="dataset.reshuffle"):
    st.session_state["dataset.seed"] += 1
docs = []
if st.session_state["dataset.seed"] >= 0:
    try:
        docs = data.sample_documents(sample_label, int(n), split, protocol, cache.data_home(),
                                     seed=st.session_state["dataset.seed"])
    except data.DataError as exc:
        st.error(frame.plain(exc))
for doc in docs:
    with st.expander(f"{frame.plain(doc.doc_id)} — {frame.plain(doc.label)}", expanded=len(docs) == 1):
        frame.show_document(doc.text, height=240)
