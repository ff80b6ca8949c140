"""The page frame shared by every page: setup, sidebar, navigation, empty states, plain-text rendering.

Untrusted strings (class names, run and pretrained names, document text, paths) reach the page
as plain text only: `plain()` for the inside of markdown, `show_document` for whole documents,
`text_table` for tables with blank cells.
"""
from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd
import streamlit as st

from newsclf import data, store
from newsclf.plots.base import neutralise_bidi
from newsclf.ui import cache

PAGES = [("app.py", "Home", ":material/home:"), ("pages/1_Dataset.py", "Dataset", ":material/database:"),
         ("pages/2_Train.py", "Train", ":material/model_training:"),
         ("pages/3_Results.py", "Results", ":material/monitoring:"),
         ("pages/4_Playground.py", "Playground", ":material/science:"),
         ("pages/5_Errors.py", "Errors", ":material/search:"),
         ("pages/6_Compare.py", "Compare", ":material/compare_arrows:")]
DOCUMENT_DISPLAY_CHARS = 20_000  # a document is shown up to this many characters (it is read whole)
BLANK = "–"  # what an empty table cell shows
# Markdown (CommonMark + Streamlit's :directives:, $math$) characters escaped by `plain`.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\](){}#+\-.!|~:$])")


# ---- plain text -------------------------------------------------------------------------------
def plain(text: Any) -> str:
    """`text` for the inside of st.markdown (and other markdown-rendering labels) as plain text:
    markdown characters backslash-escaped, `&`, `<`, `>` as entities, bidi controls neutralised."""
    text = _MARKDOWN_SPECIALS.sub(r"\\\1", neutralise_bidi(str(text)))
    return html.escape(text, quote=False).replace("\n", " ")


def truncate(text: str | None, limit: int) -> tuple[str, bool]:
    """(text cut to `limit` characters, whether it was cut)."""
    text = "" if text is None else str(text)
    return (text[:limit], True) if len(text) > limit else (text, False)


def show_document(text: str, limit: int = DOCUMENT_DISPLAY_CHARS, height: int | None = 320) -> None:
    """A document as plain text (never markdown or HTML), cut to `limit` characters with a notice."""
    shown, cut = truncate(text, limit)
    st.code(neutralise_bidi(shown) or "(empty document)", language=None, wrap_lines=True, height=height)
    if cut:
        st.caption(f"Showing the first {limit:,} of {len(text):,} characters.")


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return BLANK
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}g}"
    return str(value)


def text_table(frame: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """A display copy of `frame` whose cells are text: numbers formatted, missing values as BLANK."""
    return frame.astype(object).apply(lambda col: col.map(lambda v: _cell(v, digits)))


# ---- page frame -----------------------------------------------------------------------------
def page_setup(title: str, icon: str = ":material/newspaper:") -> None:
    """st.set_page_config + the shared sidebar; call first in every page."""
    st.set_page_config(page_title=f"{title} · newsclf", page_icon=icon, layout="wide")
    render_sidebar()


def render_sidebar() -> None:
    home, root = cache.data_home(), cache.runs_dir()
    with st.sidebar:
        st.markdown("### newsclf")
        for path, label, icon in PAGES:
            nav_link(path, label, icon)
        st.divider()
        if data.corpus_available(home):
            st.success("Corpus: available", icon=":material/check_circle:")
        else:
            st.warning("Corpus: missing (see Home)", icon=":material/warning:")
        st.caption(f"Data home: {plain(home)}")
        dev = cache.device_info()
        st.caption(f"CPU: {plain(dev['cpu'])}")
        st.caption("GPU: " + (plain(", ".join(dev["gpus"])) if dev["gpus"] else "none visible"))
        runs = store.list_runs(root)
        n_done = sum(1 for r in runs if r.state == "finished")
        n_active = sum(1 for r in runs if r.state in ("queued", "running"))
        st.caption(f"Runs dir: {plain(root)}  \n{n_done} finished, {n_active} queued/running, {len(runs)} in all")
        st.checkbox("Show archived runs", key="frame.show_archived",
                    help="Archived runs (Results page, Runs section) are hidden from the comparison pages.")


def nav_link(path: str, label: str, icon: str | None = None) -> None:
    """st.page_link that degrades to plain text where the page registry is unknown (bare scripts)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(path, label=label, icon=icon)
    except StreamlitAPIException:
        st.caption(label)


# ---- empty states ---------------------------------------------------------------------------
def finished_by_id_or_stop(what: str) -> dict[str, store.RunInfo]:
    """{run_id: RunInfo} of the finished runs not archived (all of them with the sidebar's "show
    archived runs"); without any, the empty state and st.stop()."""
    from newsclf import manage

    runs = manage.visible(cache.finished(), show_archived=bool(st.session_state.get("frame.show_archived")))
    if not runs:
        no_runs_message(what)
        st.stop()
    return {r.run_id: r for r in runs}


def run_labels(runs) -> dict[str, str]:
    """{run_id: one-line label}: the user's display name (newsclf.manage) or the id, and the model.
    For selectboxes (plain text widgets); use plain() before putting one into markdown."""
    from newsclf import compare, manage

    return {r.run_id: compare.run_label(r, manage.read_meta(r.path).display_name) for r in runs}


def no_runs_message(what: str = "this page") -> None:
    st.info(f"No finished runs yet in {plain(cache.runs_dir())}, so there is nothing to show on {what}. "
            "Start one on the **Train** page, or use the quick start on **Home**.", icon=":material/info:")
    nav_link("pages/2_Train.py", "Go to Train", ":material/model_training:")


def corpus_or_stop(message: str) -> None:
    """Without a corpus: `message`, a link to Home and st.stop()."""
    if not data.corpus_available(cache.data_home()):
        st.info(message, icon=":material/info:")
        nav_link("app.py", "Go to Home", ":material/home:")
        st.stop()
