"""The Runs section (Results page): rename, tag, note, archive, delete (confirmed), clone a config into
the Train form, and the diff of two runs' configs. The work is newsclf.manage's; this only renders."""
from __future__ import annotations

import streamlit as st

from newsclf import compare, manage, store
from newsclf.errors import UserError
from newsclf.ui import cache
from newsclf.ui.frame import BLANK, plain, run_labels, text_table

CLONE_KEY = "train.clone"  # session state: a config dict the Train form starts from


def clone_into_form(config: dict) -> None:
    """Put a run's config into the Train form and open the Train page."""
    st.session_state[CLONE_KEY] = dict(config)
    st.session_state["train.clone_n"] = int(st.session_state.get("train.clone_n", 0)) + 1
    st.switch_page("pages/2_Train.py")


def render_runs_manager() -> None:
    st.subheader("Runs")
    try:
        runs = store.list_runs(cache.runs_dir())
    except OSError:
        runs = []
    if not runs:
        st.caption("No runs yet.")
        return
    labels = run_labels(runs)
    metas = manage.metas(runs)
    st.dataframe(text_table(_overview(runs, metas)), hide_index=True, width="stretch", key="runs.table")
    by_id = {r.run_id: r for r in runs}
    run_id = st.selectbox("Run to manage", list(by_id), format_func=lambda i: labels[i], key="runs.pick")
    run, meta = by_id[run_id], metas[run_id]
    with st.form(f"runs.form.{run_id}", border=True):
        name = st.text_input("Display name", value=meta.display_name or "", max_chars=manage.MAX_NAME_CHARS,
                             help="Shown instead of the run id in pickers; the id and folder stay.")
        tags = st.text_input("Tags (separated by spaces)", value=" ".join(meta.tags))
        note = st.text_area("Note", value=meta.note, max_chars=manage.MAX_NOTE_CHARS, height=80)
        archived = st.checkbox("Archived (hidden from the comparison pages)", value=meta.archived)
        if st.form_submit_button("Save"):
            try:
                manage.rename(run_id, name, cache.runs_dir())
                manage.tag(run_id, cache.runs_dir(), add=tags.split(), remove=[t for t in meta.tags if t not in tags.split()])
                manage.set_note(run_id, note, cache.runs_dir())
                manage.archive(run_id, cache.runs_dir(), archived=archived)
            except (UserError, store.RunNotFoundError, OSError) as exc:
                st.error(plain(exc))
            else:
                st.toast(f"Saved {run_id}")
                st.rerun()
    c1, c2 = st.columns(2)
    if c1.button("Clone config into the Train form", key="runs.clone", icon=":material/content_copy:"):
        clone_into_form(run.config)
    with c2.popover("Delete this run", icon=":material/delete:"):
        st.markdown(f"Deletes **{plain(run_id)}** and every file in it for good.")
        sure = st.checkbox("Yes, delete it", key=f"runs.confirm.{run_id}")
        if st.button("Delete", type="primary", disabled=not sure, key="runs.delete"):
            try:
                manage.delete(run_id, cache.runs_dir())
            except (UserError, store.RunNotFoundError, OSError) as exc:
                st.error(plain(exc))
            else:
                st.toast(f"Deleted {run_id}")
                st.rerun()
    if len(runs) >= 2:
        st.markdown("**Config diff**")
        c1, c2, c3 = st.columns([3, 3, 1], vertical_alignment="bottom")
        a = c1.selectbox("A", list(by_id), format_func=lambda i: labels[i], key="runs.diff_a")
        b = c2.selectbox("B", list(by_id), index=1, format_func=lambda i: labels[i], key="runs.diff_b")
        only = c3.toggle("Only differences", value=True, key="runs.diff_only")
        diff = compare.config_diff(by_id[a].config, by_id[b].config, only_different=only)
        if diff.empty:
            st.caption("The two configs are identical.")
        else:
            st.dataframe(diff, hide_index=True, width="stretch", key="runs.diff")


def _overview(runs, metas):
    import pandas as pd

    rows = []
    for r in runs:
        m = metas[r.run_id]
        rows.append({"run": r.run_id, "name": m.display_name or BLANK, "model": compare.run_detail(r), "state": r.state,
                     "test acc": (r.results or {}).get("test_acc"), "tags": " ".join(m.tags) or BLANK,
                     "note": (m.note[:60] + "…") if len(m.note) > 60 else (m.note or BLANK),
                     "archived": "yes" if m.archived else "",
                     "problem": r.problem or BLANK})  # why a run is "damaged", in one line (plain cell)
    return pd.DataFrame(rows)
