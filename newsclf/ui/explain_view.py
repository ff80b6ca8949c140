"""Streamlit rendering of explanations: one panel per run, side by side.

    render_explanations(predictors, text, key, *, n_steps=32, top_k=10, max_columns=3)

Each panel: a method selector (the methods the run's family offers, `family.explain_methods`), a
class selector (default: the predicted class), the options the chosen method takes (layer/head,
with the choices `family.explain_options(model)` gives), the text highlighted by score (signed
colours for IG and TF-IDF contributions, one colour for attention; the part the model never read
greyed), a legend, and the top words as bars. Attributions are cached per (run, model version,
text, method, target, layer, head, steps). The library does the work (newsclf.explain); markup
and figures come from newsclf.plots.explain, where all user text is escaped. The shared model's
lock comes from newsclf.ui.cache.
"""
from __future__ import annotations

import html
from pathlib import Path

import streamlit as st

from newsclf import explain as ex
from newsclf.models import ExplainMethod
from newsclf.plots import explain as plots_explain
from newsclf.predict import InputError, Predictor, validate_text
from newsclf.ui.cache import model_lock
from newsclf.ui.frame import plain


def render_explanations(predictors: list[Predictor], text: str, key: str, *, n_steps: int = ex.DEFAULT_STEPS,
                        top_k: int = 10, max_columns: int = 3) -> None:
    """Explain `text` for every predictor; `key` prefixes widget keys (unique per page)."""
    if not predictors:
        st.info("Choose at least one finished run to see explanations.")
        return
    try:
        validate_text(text)
    except InputError as exc:
        st.warning(plain(exc))
        return
    if len(predictors) <= max_columns:
        slots = st.columns(len(predictors))
    else:
        slots = st.tabs([plain(p.run_id) for p in predictors])
    for i, (predictor, slot) in enumerate(zip(predictors, slots)):
        with slot:
            _render_one(predictor, text, f"{key}-explain-{i}", n_steps, top_k)


def _render_one(predictor: Predictor, text: str, key: str, n_steps: int, top_k: int) -> None:
    family = predictor.family
    st.markdown(f"**{plain(predictor.run_id)}** · {plain(family.title)}")
    methods = {m.name: m for m in family.explain_methods}
    if not methods:
        st.info(f"No explanation available for a {plain(family.title)} run.")
        return
    names = list(methods)
    method = methods[st.radio("Method", names, index=_default_index(predictor, names), horizontal=True,
                              format_func=lambda m: methods[m].title, key=f"{key}-method",
                              help="  \n".join(f"**{m.title}**: {m.help}" for m in methods.values() if m.help))]
    classes = predictor.label_names
    target = st.selectbox("Class to explain", [None, *range(len(classes))], key=f"{key}-target",
                          format_func=lambda t: "the predicted class" if t is None else str(classes[t]))
    layer, head = _options(predictor, method, key)
    try:
        with st.spinner(f"Explaining with {method.title.lower()}…"):
            attr = cached_explanation(_run_key(predictor), text, method.name, target, layer, head, n_steps,
                                      _predictor=predictor)
    except InputError as exc:
        st.warning(plain(exc))
        return
    except Exception as exc:  # noqa: BLE001 - one failing run must not take the page down
        st.error(f"Could not explain {plain(predictor.run_id)}: {type(exc).__name__}: {plain(exc)}")
        return
    st.html(plots_explain.highlight_html(attr, text))
    facts = "<br>".join(html.escape(line) for line in plots_explain.summary_lines(attr))
    st.html(plots_explain.legend_html(attr) + f'<div style="font-size:0.8rem;color:#444;margin-top:4px">{facts}</div>')
    if any(s for s in attr.scores if s):
        st.plotly_chart(plots_explain.plot_attribution_words(attr, top_k), key=f"{key}-bars", width="stretch")


def _options(predictor: Predictor, method: ExplainMethod, key: str) -> tuple[int | None, int | None]:
    """(layer, head) chosen for the methods that take them; None where a method does not."""
    if not method.options:
        return None, None
    choices = predictor.family.explain_options(predictor.model)
    layer = head = None
    cols = st.columns(len(method.options))
    if "layer" in method.options:
        n_layers = int(choices.get("layers", 1))
        layer = cols[method.options.index("layer")].selectbox(
            "Layer", list(range(n_layers)), index=n_layers - 1, key=f"{key}-layer")
    if "head" in method.options:
        head = cols[method.options.index("head")].selectbox(
            "Head", [None, *range(int(choices.get("heads", 1)))], key=f"{key}-head",
            format_func=lambda h: "mean of heads" if h is None else f"head {h}")
    return layer, head


@st.cache_data(max_entries=256, show_spinner=False)
def cached_explanation(run_key: tuple, text: str, method: str, target: int | None, layer: int | None,
                       head: int | None, n_steps: int, _predictor: Predictor) -> ex.Attribution:
    """ex.explain, cached per (run, model version, text, method, target, layer, head, steps); the
    private model copy is made under the shared model's lock."""
    return ex.explain_locked(_predictor, text, lock=model_lock(_predictor), method=method, target=target,
                             layer=layer, head=head, n_steps=n_steps)


def _run_key(predictor: Predictor) -> tuple:
    best = Path(predictor.run_dir) / "best"
    try:
        stamp = best.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return str(predictor.run_dir), stamp, str(predictor.device), id(predictor.model)


def _default_index(predictor: Predictor, methods: list[str]) -> int:
    """Attention on CPU where the family has it (instant); otherwise the family's first method."""
    if "attention" in methods and "cuda" not in str(predictor.device):
        return methods.index("attention")
    return 0
