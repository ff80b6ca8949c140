"""Getting the corpus from the dashboard: sklearn download or a local archive import, with progress."""
from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from newsclf import data
from newsclf.ui.cache import data_home
from newsclf.ui.frame import plain


def render_corpus_status() -> bool:
    """Say whether the corpus is there; when not, offer download / import. Returns availability."""
    home = data_home()
    if data.corpus_available(home):
        st.success(f"The 20 Newsgroups corpus is in {plain(home)}.", icon=":material/check_circle:")
        return True
    st.warning(f"The 20 Newsgroups corpus is not in the data home {plain(home)} yet.", icon=":material/warning:")
    tab_import, tab_fetch = st.tabs(["Import a local archive", "Download"])
    with tab_import:
        path = st.text_input("Path to 20news-bydate.tar.gz (or its extracted folder) on the server",
                             key="data.archive_path")
        upload = st.file_uploader("…or upload the archive", type=["gz", "tgz", "tar"], key="data.upload")
        if st.button("Import", key="data.import"):
            if path.strip() or upload is not None:
                _import(path.strip(), upload)
            else:
                st.warning("Give the archive's path on the server, or upload it.", icon=":material/warning:")
    with tab_fetch:
        st.caption("Downloads with scikit-learn's fetcher (about 14 MB; needs internet access).")
        if st.button("Download", key="data.fetch"):
            with st.spinner("Downloading the corpus…"):
                try:
                    data.fetch_corpus(home)
                except data.DataError as exc:
                    st.error(f"{plain(exc)}  \nNo internet here? Use the **Import a local archive** tab beside "
                             "this one: give the path of 20news-bydate.tar.gz on the server, or upload it.",
                             icon=":material/cloud_off:")
                    return False
            st.cache_data.clear()
            st.rerun()
    return False


def _import(path: str, upload) -> None:
    bar = st.progress(0.0, text="starting the import")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    try:
        if upload is not None:
            with tempfile.TemporaryDirectory() as tmp:
                target = Path(tmp) / "20news-bydate.tar.gz"
                target.write_bytes(upload.getvalue())
                data.import_archive(target, data_home(), progress=progress)
        else:
            data.import_archive(path, data_home(), progress=progress)
    except data.DataError as exc:
        st.error(str(exc))
        return
    progress(1.0, "computing the corpus statistics (once, for the Dataset page)")
    data.precompute_stats(data_home())
    from newsclf.ui.cache import doc_lengths

    for protocol in ("seed", "raw"):
        doc_lengths(protocol)  # measured now and kept beside the corpus: the Dataset page opens fast
    st.cache_data.clear()
    st.success("Imported.")
    st.rerun()
