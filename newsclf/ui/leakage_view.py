"""Header leakage: the same config under the seed protocol (headers removed) and the raw one (headers
kept); the accuracy the headers add, a button to queue a missing twin, and, for a raw run, the share
of attribution mass that falls on header lines (a fixed sample of test documents, cached)."""
from __future__ import annotations

import streamlit as st

from newsclf import jobs, leakage
from newsclf.config import ConfigError
from newsclf.data import DataError
from newsclf.ui import cache
from newsclf.ui.frame import plain, text_table


def render_leakage(runs, names: dict[str, str], key: str = "leakage") -> None:
    twins = leakage.protocol_twins(runs)
    if twins.empty:
        st.caption("No pair of runs with the same config under both protocols yet.")
    else:
        st.dataframe(text_table(twins), hide_index=True, width="stretch", key=f"{key}.twins")
        st.caption("raw - seed: the accuracy the headers (and quotes, footers, short posts) add to the same model.")
    missing = leakage.missing_twins(runs)
    if missing:
        c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
        pick = c1.selectbox("Run without a twin", [r.run_id for r in missing], format_func=lambda i: names[i],
                            key=f"{key}.missing")
        if c2.button("Queue its twin", key=f"{key}.queue", icon=":material/add_task:"):
            run = next(r for r in missing if r.run_id == pick)
            try:
                job = jobs.submit(leakage.twin_config(run.config), cache.runs_dir(), gpus=None)
            except (ConfigError, OSError, ValueError) as exc:
                st.error(plain(exc))
            else:
                st.success(f"Queued {plain(job.id)} ({leakage.other_protocol(run.config)} protocol).")
    raw = [r for r in runs if str(r.config.get("protocol", "seed")) == "raw"]
    if not raw:
        return
    run_id = st.selectbox("Raw-protocol run to inspect", [r.run_id for r in raw], format_func=lambda i: names[i],
                          key=f"{key}.raw")
    if st.toggle(f"Explain {cache.HEADER_SAMPLE} test documents to measure attribution on headers", key=f"{key}.explain"):
        try:
            share = cache.header_share(run_id)
        except (DataError, *cache.RUN_ERRORS) as exc:
            st.warning(f"Could not explain: {plain(exc)}")
            return
        if share["mean"] is None:
            st.caption("None of the sampled documents has a header block.")
        else:
            st.metric("Attribution mass on header lines", f"{share['mean']:.1%}",
                      help=f"Mean over {share['with_header']} of {share['n']} documents; method {share['method']}; "
                           "header block = text before the first blank line.")
