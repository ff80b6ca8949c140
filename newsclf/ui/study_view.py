"""The study section (Results page): queue its grid in one click, follow it, build its ensemble when
due (newsclf.study.reconcile_study), and our numbers beside the published ones with the exact interval."""
from __future__ import annotations

import streamlit as st

from newsclf import study, study_published
from newsclf.config import ConfigError
from newsclf.ui import cache
from newsclf.ui.frame import plain, text_table


def _seed_sizes() -> dict[str, int] | None:
    """The seed protocol's split sizes when the corpus is here (from the cached statistics), else None."""
    from newsclf import data

    try:
        return cache.corpus_stats("seed")["splits"]
    except (data.DataError, OSError, KeyError, TypeError):
        return None


def render_study(runs, key: str = "study") -> None:
    root = cache.runs_dir()
    try:
        records = study.reconcile_study(root)
    except OSError as exc:
        st.warning(f"Study records unreadable: {plain(exc)}")
        records = []
    record = records[0] if records else None
    if record is not None:
        state = study.study_state(root, record)
        st.caption(f"Study {plain(record.id)} ({plain(record.pretrained_small)}, {plain(record.pretrained_large)}): "
                   f"{len(record.job_ids)} jobs, {state}" + (f"; ensemble {plain(record.ensemble)}" if record.ensemble else "")
                   + (f"; ensemble refused: {plain(record.ensemble_error)}" if record.ensemble_error else ""))
    st.dataframe(text_table(study.study_table(runs, record)), hide_index=True, width="stretch", key=f"{key}.table")
    st.caption("Each run is compared with the published row of its own model and strategy. Published numbers have "
               "no per-document predictions: a gap counts when the published accuracy lies outside the exact "
               "binomial 95 % interval of ours (n = our test documents). Our run: the best by validation accuracy"
               + (" among the study's jobs." if record else " among matching runs."))
    st.caption(study_published.split_note(_seed_sizes()) + " Our accuracies are on our test set (n above), the study's on its own.")
    with st.expander("The study's published table"):
        st.dataframe(text_table(study_published.published_frame()), hide_index=True, width="stretch", key=f"{key}.published")
        st.caption(f"\"{study_published.NOT_GIVEN}\": the study gives no figure for that cell (no macro-F1, no parameter "
                   "counts, no frozen-backbone results); nothing is filled in. The study does not name the strategy "
                   "of its DistilBERT 73.88 % row: it is placed under hybrid from its numbers (see the row).")
    with st.expander("Reproduce the study in one click"):
        st.markdown("Queues TF-IDF, the BiLSTM study preset, and freeze / hybrid / full of a small and a large "
                    "pretrained model; when they are done, the best run of each group is ensembled.")
        c1, c2 = st.columns(2)
        small = c1.text_input("Small pretrained model (id or local folder)", study.SMALL, key=f"{key}.small")
        large = c2.text_input("Large pretrained model (id or local folder)", study.LARGE, key=f"{key}.large")
        if st.button("Queue the study", key=f"{key}.queue", icon=":material/playlist_add:"):
            try:
                rec = study.queue_study(root, small, large, gpus=None)
            except (ConfigError, OSError, ValueError) as exc:
                st.error(plain(exc))
            else:
                st.success(f"Queued {len(rec.job_ids)} jobs (study {plain(rec.id)}); follow them on the Train page.")
