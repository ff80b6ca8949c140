"""Errors page helpers: a selectable document table per tab, and a document with each run's prediction."""
from __future__ import annotations

import streamlit as st

from newsclf.ui import cache, frame


def pick_document(rows, source: str, key: str) -> str | None:
    """A table with single-row selection and a document selectbox that follows it; the chosen doc id.

    Selecting a row (or another document) makes this tab's document the one explained below."""
    ids = rows["doc_id"].tolist()
    event = st.dataframe(rows, hide_index=True, width="stretch", height=300, on_select="rerun",
                         selection_mode="single-row", key=f"{key}.table",
                         column_config={c: st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")
                                        for c in rows.columns if "conf" in c})
    selected = [i for i in (event.selection.rows if event else []) if i < len(ids)]
    seen = st.session_state.setdefault("errors.seen", {})
    if seen.get(key) != selected:  # a new row selection in this tab: it decides what is explained
        seen[key] = selected
        if selected:
            st.session_state["errors.focus"] = source
    index = selected[0] if selected else 0
    return st.selectbox("Document", ids, index=index, key=f"{key}.doc.{index}",
                        on_change=lambda: st.session_state.update({"errors.focus": source}))


def show_document(doc_id: str, rows: dict[str, dict], protocol: str) -> None:
    """The document's text with each run's prediction."""
    st.markdown(f"**Document {frame.plain(doc_id)}**")
    for col, (name, row) in zip(st.columns(len(rows)), rows.items()):
        ok = ":material/check_circle:" if row["predicted"] == row["true"] else ":material/cancel:"
        col.markdown(f"{ok} **{frame.plain(name)}**: {frame.plain(row['predicted'])} "
                     f"({row['confidence']:.1%}); true: {frame.plain(row['true'])}")
    text = cache.documents([doc_id], protocol).get(doc_id)
    frame.show_document(text if text is not None else "(text unavailable: the corpus is missing)")
