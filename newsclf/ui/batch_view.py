"""The Playground's batch mode: many texts (pasted, separated by blank lines, or a .txt/.csv upload)
classified by every chosen run; a table of predictions (plain text) and a CSV download."""
from __future__ import annotations

import csv
import io
import itertools
import re

import pandas as pd
import streamlit as st

from newsclf.config import MAX_TEXT_CHARS
from newsclf.csvsafe import to_csv_bytes
from newsclf.ui import cache
from newsclf.ui.frame import plain

_BLANK_LINES = re.compile(r"\n\s*\n")
MAX_UPLOAD_BYTES = 8 << 20  # 500 texts of 16 kB; only this much of a larger upload is read


def split_texts(pasted: str, limit: int | None = None) -> tuple[list[str], int]:
    """(the first `limit` texts separated by one or more blank lines, how many there are); empty pieces
    dropped. Counted as they are found: a huge paste never becomes millions of strings at once."""
    texts, count, start = [], 0, 0
    text = pasted.replace("\r\n", "\n")
    for match in itertools.chain(_BLANK_LINES.finditer(text), [None]):
        piece = text[start:match.start() if match else len(text)].strip()
        start = match.end() if match else len(text)
        if piece:
            count += 1
            if limit is None or len(texts) < limit:
                texts.append(piece[:MAX_TEXT_CHARS])
    return texts, count


def read_upload(name: str, raw: bytes, limit: int | None = None) -> tuple[list[str], int]:
    """(the first `limit` texts of an uploaded file, how many it holds): a .csv's "text" column (else its
    first column), a .txt split on blank lines. Rows are parsed one at a time and each text is cut at
    MAX_TEXT_CHARS, so memory stays near the upload's own size; a malformed CSV gives what it held so far."""
    content = raw.decode("utf-8", errors="replace")
    if not name.lower().endswith(".csv"):
        return split_texts(content, limit)
    texts, count, col, header = [], 0, 0, True
    reader = csv.reader(io.StringIO(content))
    try:
        for row in reader:
            if header:
                header = False
                names = [h.strip().lower() for h in row]
                if "text" in names:
                    col = names.index("text")
                    continue
            cell = row[col].strip() if len(row) > col else ""
            if cell:
                count += 1
                if limit is None or len(texts) < limit:
                    texts.append(cell[:MAX_TEXT_CHARS])
    except csv.Error:
        pass  # a field over csv's size limit or a broken quote: the rows before it are kept
    return texts, count


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
    if upload is not None:
        raw = upload.read(MAX_UPLOAD_BYTES + 1)
        if len(raw) > MAX_UPLOAD_BYTES:
            st.warning(f"The file is larger than {MAX_UPLOAD_BYTES >> 20} MB: only its first "
                       f"{MAX_UPLOAD_BYTES >> 20} MB are read.", icon=":material/content_cut:")
        texts, total = read_upload(upload.name, raw[:MAX_UPLOAD_BYTES], cache.MAX_BATCH_TEXTS)
    else:
        texts, total = split_texts(pasted or "", cache.MAX_BATCH_TEXTS)
    if not texts:
        st.info("Paste texts separated by blank lines, or upload a file.", icon=":material/edit:")
        return
    if not chosen:
        st.info("Choose at least one run above.", icon=":material/info:")
        return
    if total > len(texts):
        st.warning(f"{total:,} texts: only the first {len(texts):,} are classified.", icon=":material/content_cut:")
    with st.spinner(f"Classifying {len(texts)} texts with {len(chosen)} runs…"):
        table, problems = batch_table(texts, chosen, names)
    for problem in problems:
        st.warning(f"Cannot use {plain(problem)}")
    st.caption(f"{len(texts)} texts × {len(chosen)} runs")
    st.dataframe(table, hide_index=True, width="stretch", key="playground.batch_table",
                 column_config={c: st.column_config.ProgressColumn(min_value=0, max_value=1, format="%.2f")
                                for c in table.columns if c.endswith(" p")})
    st.download_button("Download CSV", to_csv_bytes(table), file_name="newsclf_batch.csv",
                       mime="text/csv", key="playground.batch_csv")
