"""The Playground's batch mode: many texts (pasted, separated by blank lines, or a .txt/.csv upload)
classified by every chosen run; a table of predictions (plain text) and a CSV download."""
from __future__ import annotations

import csv
import io
import re

import pandas as pd
import streamlit as st

from newsclf.config import MAX_TEXT_CHARS
from newsclf.ui import cache
from newsclf.ui.frame import plain

_BLANK_LINES = re.compile(r"\n\s*\n")


def split_texts(pasted: str) -> list[str]:
    """Texts separated by one or more blank lines (empty pieces dropped)."""
    return [t.strip() for t in _BLANK_LINES.split(pasted.replace("\r\n", "\n")) if t.strip()]


def read_upload(name: str, raw: bytes) -> list[str]:
    """Texts of an uploaded file: a .csv's "text" column (else its first column), a .txt split on blank lines."""
    content = raw.decode("utf-8", errors="replace")
    if name.lower().endswith(".csv"):
        rows = list(csv.reader(io.StringIO(content)))
        if not rows:
            return []
        header = [h.strip().lower() for h in rows[0]]
        col = header.index("text") if "text" in header else 0
        body = rows[1:] if "text" in header else rows
        return [r[col].strip() for r in body if len(r) > col and r[col].strip()]
    return split_texts(content)


def batch_table(texts: list[str], chosen: list[str], names: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """(one row per text with each run's predicted class and probability, messages about runs that failed)."""
    table = pd.DataFrame({"#": range(1, len(texts) + 1),
                          "text": list(texts)})
    problems = []
    for run_id in chosen:
        try:
            classes, probs = cache.predict_batch(run_id, [t[:MAX_TEXT_CHARS] for t in texts])
        except cache.RUN_ERRORS as exc:
            problems.append(f"{names.get(run_id, run_id)}: {exc}")
            continue
        best = [max(range(len(p)), key=p.__getitem__) for p in probs]
        table[f"{run_id} predicted"] = [classes[i] for i in best]
        table[f"{run_id} p"] = [p[i] for p, i in zip(probs, best)]
    return table, problems


def render_batch(chosen: list[str], names: dict[str, str]) -> None:
    pasted = st.text_area("Texts, separated by blank lines", key="playground.batch_text", height=200)
    upload = st.file_uploader("…or upload a .txt (blank-line separated) or .csv (a \"text\" column)",
                              type=["txt", "csv"], key="playground.batch_file")
    texts = read_upload(upload.name, upload.getvalue()) if upload is not None else split_texts(pasted or "")
    if not texts:
        st.info("Paste texts separated by blank lines, or upload a file.", icon=":material/edit:")
        return
    if not chosen:
        st.info("Choose at least one run above.", icon=":material/info:")
        return
    if len(texts) > cache.MAX_BATCH_TEXTS:
        st.warning(f"{len(texts):,} texts: only the first {cache.MAX_BATCH_TEXTS:,} are classified.",
                   icon=":material/content_cut:")
        texts = texts[: cache.MAX_BATCH_TEXTS]
    with st.spinner(f"Classifying {len(texts)} texts with {len(chosen)} runs…"):
        table, problems = batch_table(texts, chosen, names)
    for problem in problems:
        st.warning(f"Cannot use {plain(problem)}")
    st.caption(f"{len(texts)} texts × {len(chosen)} runs")
    st.dataframe(table, hide_index=True, width="stretch", key="playground.batch_table",
                 column_config={c: st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")
                                for c in table.columns if c.endswith(" p")})
    st.download_button("Download CSV", table.to_csv(index=False).encode("utf-8"), file_name="newsclf_batch.csv",
                       mime="text/csv", key="playground.batch_csv")
