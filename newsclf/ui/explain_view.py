"""Streamlit rendering of explanations: one panel per run, side by side.

    render_explanations(predictors, text, key, *, locks=None, n_steps=32, top_k=10, max_columns=3)

Each panel: a method selector (only the methods the run has), a class selector (default: the
predicted class), layer/head selectors for transformer attention, the text highlighted by
score (signed colours for IG and TF-IDF contributions, one colour for attention; the part the
model never read greyed), a legend, and the top words as bars. Attributions are cached per
(run, model version, text, method, target, layer, head, steps). The library does the work
(newsclf.explain); markup and figures come from newsclf.plots_explain, where all user text is escaped.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from newsclf import explain as ex
from newsclf import plots_explain
from newsclf.predict import InputError, Predictor, validate_text


def render_explanations(predictors: list[Predictor], text: str, key: str, *, locks: Sequence[Any] | None = None,
                        n_steps: int = ex.DEFAULT_STEPS, top_k: int = 10, max_columns: int = 3) -> None:
    """Explain `text` for every predictor; `key` prefixes widget keys (unique per page);
    `locks[i]` (optional) guards the shared model of `predictors[i]` while a private copy is made."""
    if not predictors:
        st.info("Choose at least one finished run to see explanations.")
        return
    try:
        validate_text(text)
    except InputError as exc:
        st.warning(str(exc))
        return
    locks = list(locks) if locks is not None else [None] * len(predictors)
    if len(predictors) <= max_columns:
        slots = st.columns(len(predictors))
    else:
        slots = st.tabs([p.run_id for p in predictors])
    for i, (predictor, slot) in enumerate(zip(predictors, slots)):
        with slot:
            _render_one(predictor, text, f"{key}-explain-{i}", locks[i] if i < len(locks) else None, n_steps, top_k)


def _render_one(predictor: Predictor, text: str, key: str, lock: Any, n_steps: int, top_k: int) -> None:
    st.markdown(f"**`{predictor.run_id}`** · {predictor.kind}")
    methods = ex.available_methods(predictor.kind)
    if not methods:
        st.info(f"No explanation available for a {predictor.kind!r} run.")
        return
    method = st.radio("Method", methods, index=_default_index(predictor, methods), horizontal=True,
                      format_func=lambda m: ex.METHOD_NAMES.get(m, m), key=f"{key}-method",
                      help="TF-IDF has no attention: its exact per-word contributions explain it."
                      if predictor.kind == "tfidf" else "Integrated gradients takes a few seconds on CPU.")
    names = predictor.label_names
    target = st.selectbox("Class to explain", [None, *range(len(names))], key=f"{key}-target",
                          format_func=lambda t: "the predicted class" if t is None else names[t])
    layer = head = None
    if predictor.kind == "transformer" and method == "attention":
        n_layers, n_heads = _layers_heads(predictor.model)
        c1, c2 = st.columns(2)
        layer = c1.selectbox("Layer", list(range(n_layers)), index=n_layers - 1, key=f"{key}-layer")
        head = c2.selectbox("Head", [None, *range(n_heads)], key=f"{key}-head",
                            format_func=lambda h: "mean of heads" if h is None else f"head {h}")
    try:
        with st.spinner(f"Explaining with {ex.METHOD_NAMES.get(method, method).lower()}…"):
            attr = cached_explanation(_run_key(predictor), text, method, target, layer, head, n_steps,
                                      _predictor=predictor, _lock=lock)
    except InputError as exc:
        st.warning(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - one failing run must not take the page down
        st.error(f"Could not explain {predictor.run_id}: {type(exc).__name__}: {exc}")
        return
    st.html(plots_explain.highlight_html(attr, text))
    facts = "<br>".join(html.escape(line) for line in plots_explain.summary_lines(attr))
    st.html(plots_explain.legend_html(attr) + f'<div style="font-size:0.8rem;color:#444;margin-top:4px">{facts}</div>')
    if any(s for s in attr.scores if s):
        st.plotly_chart(plots_explain.top_words_figure(attr, top_k), key=f"{key}-bars", width="stretch")


@st.cache_data(max_entries=256, show_spinner=False)
def cached_explanation(run_key: tuple, text: str, method: str, target: int | None, layer: int | None,
                       head: int | None, n_steps: int, _predictor: Predictor, _lock: Any = None) -> ex.Attribution:
    """ex.explain, cached per (run, model version, text, method, target, layer, head, steps)."""
    return ex.explain_locked(_predictor, text, lock=_lock, method=method, target=target, layer=layer, head=head,
                             n_steps=n_steps)


def _run_key(predictor: Predictor) -> tuple:
    best = Path(predictor.run_dir) / "best"
    try:
        stamp = best.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return str(predictor.run_dir), stamp, str(predictor.device), id(predictor.model)


def _default_index(predictor: Predictor, methods: tuple[str, ...]) -> int:
    """IG where it is quick (GPU), attention on CPU (instant); TF-IDF has one method."""
    if "attention" in methods and "cuda" not in str(predictor.device):
        return methods.index("attention")
    return 0


def _layers_heads(model) -> tuple[int, int]:
    cfg = model.config
    layers = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None) or 1
    heads = getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_heads", None) or 1
    return int(layers), int(heads)
