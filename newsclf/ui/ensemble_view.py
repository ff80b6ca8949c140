"""The ensemble form: pick finished runs, weights (auto / equal / custom), combine (mean / logmean), a
name; newsclf.ensemble.build_ensemble does the work and its one-line refusal is shown as is."""
from __future__ import annotations

import streamlit as st

from newsclf import compare
from newsclf.config import COMBINES
from newsclf.ensemble import build_ensemble
from newsclf.errors import UserError
from newsclf.ui import cache
from newsclf.ui.frame import plain

WEIGHTS = {"auto": "auto (fitted on validation)", "equal": "equal", "custom": "custom"}


def render_ensemble_form(runs, names: dict[str, str], key: str = "ensemble") -> str | None:
    """The form; returns the new ensemble's run id once built (it then appears wherever a run does)."""
    candidates = [r.run_id for r in runs if not compare.combines_runs(r)]
    if len(candidates) < 2:
        st.caption("Two finished runs (not ensembles) are needed to build an ensemble.")
        return None
    with st.form(f"{key}.form", border=True):
        members = st.multiselect("Members (finished runs of one protocol)", candidates, format_func=lambda i: names[i],
                                 key=f"{key}.members")
        c1, c2, c3 = st.columns([2, 2, 2])
        weights = c1.radio("Weights", list(WEIGHTS), format_func=WEIGHTS.get, key=f"{key}.weights", horizontal=True)
        custom = c2.text_input("Custom weights (w1,w2,...)", key=f"{key}.custom", placeholder="0.5,0.5",
                               help="Used with 'custom': one number per member, in the order picked.")
        combine = c3.radio("Combine", COMBINES, key=f"{key}.combine", horizontal=True,
                           help="mean of probabilities, or logmean (mean of log-probabilities, renormalised)")
        name = st.text_input("Name (part of the run id)", key=f"{key}.name", placeholder="ensemble")
        submitted = st.form_submit_button("Build the ensemble", icon=":material/join:")
    if not submitted:
        return None
    spec = custom.strip() if weights == "custom" else weights
    try:
        run_dir = build_ensemble(members, cache.runs_dir(), weights=spec or "custom", combine=combine,
                                 name=name.strip() or None)
    except (UserError, *cache.RUN_ERRORS) as exc:
        st.error(plain(exc), icon=":material/error:")
        return None
    st.success(f"Built ensemble **{plain(run_dir.name)}**: it is now listed with the other runs "
               "(Results, Playground, Errors).", icon=":material/check_circle:")
    return run_dir.name
