"""Results page helpers: the documents behind a confusion-matrix cell."""
from __future__ import annotations

import streamlit as st

from newsclf import compare
from newsclf.csvsafe import to_csv_bytes
from newsclf.ui import cache, frame


def render_cell_documents(run, cm_run: str, matrix, labels: list[str], split: str, clicked) -> None:
    """The documents of a cell (clicked in the matrix, or chosen here) with their text."""
    with st.expander("Documents in a cell (click a cell above, or choose here)", expanded=clicked is not None):
        pairs = compare.confusion_pairs(matrix, labels)
        counts = {(i, j): n for i, j, n in pairs}
        cell = clicked or (st.selectbox("Cell (true → predicted)", list(counts), key=f"results.cell.{cm_run}.{split}",
                                        format_func=lambda c: f"{labels[c[0]]} → {labels[c[1]]} ({counts[c]})")
                           if counts else None)
        preds = cache.load_predictions(cm_run, split) if cell is not None else None
        if cell is not None and preds is None:
            st.warning("This run's predictions are missing (deleted or being rewritten).")
        elif cell is not None:
            docs = compare.cell_documents(preds, cell[0], cell[1])
            st.markdown(f"**{len(docs)}** documents with true **{frame.plain(labels[cell[0]])}** predicted "
                        f"**{frame.plain(labels[cell[1]])}**")
            texts = cache.documents([d for d, _ in docs[:10]], run.config.get("protocol", "seed"))
            for doc_id, conf in docs[:10]:
                with st.expander(f"{frame.plain(doc_id)} — confidence {conf:.2f}"):
                    frame.show_document(texts.get(doc_id, "(text unavailable: corpus missing)"), height=200)
            if len(docs) > 10:
                st.caption(f"…and {len(docs) - 10} more.")


def render_comparison_table(picked):
    """The study's comparison table of the picked runs (numbers formatted, text cells plain) and a CSV download;
    returns the table (its columns are newsclf.compare's constants)."""
    table = compare.comparison_table(picked)
    st.dataframe(frame.text_table(table.drop(columns=[compare.VAL_ACC, compare.TEST_ACC, compare.MACRO_F1]))
                 .join(table[[compare.VAL_ACC, compare.TEST_ACC, compare.MACRO_F1]]),
                 hide_index=True, width="stretch",
                 column_order=compare.COMPARISON_COLUMNS,
                 column_config={c: st.column_config.NumberColumn(format="%.4f")
                                for c in (compare.VAL_ACC, compare.TEST_ACC, compare.MACRO_F1)})
    st.download_button("Download CSV", to_csv_bytes(table), file_name="newsclf_comparison.csv",
                       mime="text/csv", key="results.csv")
    return table
