"""Playground: classify pasted text (or a test document) with two or more runs side by side, and explain why."""
from __future__ import annotations

import streamlit as st

from newsclf import calibration, compare, plots
from newsclf.config import MAX_TEXT_CHARS
from newsclf.predict import InputError, top_classes, validate_text
from newsclf.ui import batch_view, cache, explain_view, frame

MAX_URL_TEXT = 2000  # longer texts are not put into the page's URL

frame.page_setup("Playground", ":material/science:")
st.title("Playground")

by_id = frame.finished_by_id_or_stop("the Playground")
runs = list(by_id.values())


def _default_runs() -> list[str]:
    """The newest run of each model family, at most three."""
    seen, out = set(), []
    for r in runs:
        if r.model not in seen:
            seen.add(r.model)
            out.append(r.run_id)
    return out[:3] if len(out) >= 2 else [r.run_id for r in runs[:2]]


names = frame.run_labels(runs)
# ---- the page state lives in the URL (?runs=ID&runs=ID&text=...), so a comparison can be shared ----
if "playground.runs" not in st.session_state:
    wanted = [r for r in st.query_params.get_all("runs") if r in by_id]
    st.session_state["playground.runs"] = wanted or _default_runs()
if "playground.text" not in st.session_state and st.query_params.get("text"):
    st.session_state["playground.text"] = st.query_params.get("text", "")[:MAX_URL_TEXT]

chosen = st.multiselect("Runs (two or more to compare)", list(by_id), format_func=lambda i: names[i], key="playground.runs")
members = [m for i in chosen for m in compare.ensemble_members(by_id[i]) if m in by_id and m not in chosen]
if members:  # an ensemble beside its members: whose vote decides?
    st.button("Show the ensemble's members beside it", key="playground.members", icon=":material/join:",
              on_click=lambda: st.session_state.update({"playground.runs": [*chosen, *dict.fromkeys(members)]}))
batch = st.toggle("Batch mode: many texts at once", key="playground.batch",
                  help="Paste several texts separated by blank lines, or upload a .txt or .csv file.")
if batch:
    batch_view.render_batch(chosen, names)
    st.stop()

samples = cache.sample_test_docs()
if samples:
    def _use_sample() -> None:
        doc_id = st.session_state.get("playground.sample")
        st.session_state["playground.text"] = cache.documents([doc_id]).get(doc_id, "") if doc_id else ""

    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    true_class = dict(samples)
    c1.selectbox("…or pick a test document", [d for d, _ in samples], key="playground.sample",
                 format_func=lambda d: f"{d} (true: {true_class[d]})")
    c2.button("Use this document", on_click=_use_sample, key="playground.use_sample")

raw = st.text_area("Text to classify", key="playground.text", height=200,
                   placeholder="Paste a newsgroup post, an e-mail, any English text…")
_share = {"runs": list(chosen)}
if raw and len(raw) <= MAX_URL_TEXT:
    _share["text"] = raw
if {"runs": st.query_params.get_all("runs"), "text": st.query_params.get("text")} != \
        {"runs": _share["runs"], "text": _share.get("text")}:
    st.query_params.from_dict(_share)
if raw and len(raw) > MAX_URL_TEXT:
    st.caption(f"The link of this page keeps the runs but not a text longer than {MAX_URL_TEXT:,} characters.")
text, cut = frame.truncate(raw or "", MAX_TEXT_CHARS)
if cut:
    st.warning(f"The text has {len(raw):,} characters; only the first {MAX_TEXT_CHARS:,} are classified.",
               icon=":material/content_cut:")
try:
    text = validate_text(text, "text")
except InputError:
    st.info("Paste some text above (or pick a test document) to see each run's prediction.", icon=":material/edit:")
    st.stop()
calibrated = st.toggle("Calibrated probabilities", key="playground.calibrated",
                       help="Scale each run's probabilities by its temperature fitted on validation (fit it on the "
                            "Compare page or with `newsclf calibrate RUN`). The predicted class never changes.")
if not chosen:
    st.info("Choose at least one run above.", icon=":material/info:")
    st.stop()
if len(chosen) == 1:
    st.caption("Choose a second run to compare predictions side by side.")

predictors, results = [], {}
for col, run_id in zip(st.columns(len(chosen)), chosen):
    with col:
        st.markdown(f"**{frame.plain(names[run_id])}**")
        try:
            predictor, probs, ms = cache.predict_text(run_id, text)
        except cache.RUN_ERRORS as exc:
            st.warning(f"Cannot use this run: {frame.plain(exc)}")
            continue
        except Exception as exc:  # a broken checkpoint must not take the page down
            st.error(f"Prediction failed ({type(exc).__name__}: {frame.plain(exc)})")
            continue
        temperature, note = None, ""
        if calibrated:
            try:
                scaled, temperature = calibration.with_stored_temperature(predictor.run_dir, [probs])
                probs = [float(p) for p in scaled[0]]
                note = f", calibrated (T = {temperature:.2f})" if temperature else ", not calibrated (no temperature stored)"
            except cache.RUN_ERRORS as exc:  # a linked or unreadable calibration.json: the model's own probabilities
                note = f", not calibrated ({frame.plain(exc)})"
        top = top_classes(probs, predictor.label_names, 5)
        predictors.append(predictor)
        results[run_id] = top[0][0]
        st.metric("Predicted class", frame.plain(top[0][0]))
        st.caption(f"probability {top[0][1]:.1%}{note}")
        st.plotly_chart(plots.plot_top_k(top, "Top 5"), width="stretch", key=f"playground.top.{run_id}")
        st.caption(f"classified in {ms:.0f} ms")

if len(results) >= 2:
    answers = set(results.values())
    if len(answers) == 1:
        st.success(f"All {len(results)} runs agree: **{frame.plain(next(iter(answers)))}**", icon=":material/handshake:")
    else:
        st.warning("The runs disagree: " + "; ".join(f"{r} → {frame.plain(c)}" for r, c in results.items()),
                   icon=":material/balance:")

if predictors:
    st.subheader("Why? Explanations")
    explain_view.render_explanations(predictors, text, key="playground")
