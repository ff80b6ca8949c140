"""Explanation markup (newsclf.plots.explain) and its Streamlit panel (newsclf.ui.explain_view)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf.explain import Attribution
from newsclf.plots.explain import highlight_html, legend_html, plot_attribution_words, summary_lines

EVIL = 'Graphics <script>alert("x")</script> render & "pixel" <b>hockey</b>'
ROOT = Path(__file__).resolve().parents[1]


def fake_attribution(text: str, scores, seen=None, method: str = "ig") -> Attribution:
    from newsclf.text import word_spans

    spans = word_spans(text)
    assert len(spans) == len(scores)
    seen = seen or [True] * len(spans)
    return Attribution(run_id="r", model="bilstm", method=method, target=1, label_names=["a", "<i>b</i>"],
                       probabilities=[0.3, 0.7], words=[w for w, _, _ in spans],
                       offsets=[(s, e) for _, s, e in spans],
                       scores=[s if ok else None for s, ok in zip(scores, seen)], seen=seen, delta=1e-4,
                       f_input=1.0, f_baseline=0.2, n_steps=32)


def test_highlight_escapes_all_user_text():
    attr = fake_attribution(EVIL, [0.5, -0.2, 0.0, 0.1, 0.3, -0.4, 0.2, 0.9, 0.1, -0.3])  # 10 words
    markup = highlight_html(attr, EVIL)
    assert "<script" not in markup and "</script" not in markup and "<b>" not in markup
    assert "&lt;<span" in markup and "&amp;" in markup and "&quot;<span" in markup  # gaps escaped, words wrapped
    assert "rgba(26,150,65" in markup and "rgba(215,48,39" in markup  # signed colours
    legend = legend_html(attr)
    assert "<i>b</i>" not in legend and "&lt;i&gt;b&lt;/i&gt;" in legend  # class names escaped too


def test_highlight_neutralises_bidi_controls():
    from newsclf.text import word_spans

    text = "price \u202egnp.exe\u202c is \u2066fine\u2069 ok\u200f"
    attr = fake_attribution(text, [0.1 * (i + 1) for i in range(len(word_spans(text)))])
    markup = highlight_html(attr, text)
    for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f":
        assert ch not in markup
    assert "[U+202E]" in markup and "[U+2066]" in markup and "[U+200F]" in markup
    assert "\u202e" not in json.dumps(plot_attribution_words(attr, 3).to_dict(), ensure_ascii=False)


def test_highlight_marks_unseen_part_and_one_colour_for_attention():
    text = "one two three four five"
    attr = fake_attribution(text, [0.1, 0.2, 0.3, 0, 0], seen=[True, True, True, False, False], method="attention")
    markup = highlight_html(attr, text)
    assert "stopped reading here" in markup and markup.count("line-through") >= 3  # two words + the gap
    assert "rgba(215,48,39" not in markup and "rgba(33,102,172" in markup
    assert "never seen" in legend_html(attr)
    assert any("delta" in line or "predicted" in line for line in summary_lines(attr))
    fig = plot_attribution_words(attr, k=2)
    assert list(fig.data[0].y) == ["two", "three"]  # ascending, the top 2
    signed = plot_attribution_words(fake_attribution(text, [0.5, -0.2, 0.3, -0.1, 0.0]), k=1)
    assert list(signed.data[0].y) == ["two", "one"]


def test_core_modules_do_not_import_streamlit():
    code = ("import sys, newsclf.explain, newsclf.plots.explain, newsclf.commands.explain; "
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


APP = """
import json, os
from newsclf.predict import load_predictor
from newsclf.ui.explain_view import render_explanations

cfg = json.loads(os.environ["NEWSCLF_EXPLAIN_TEST"])
preds = [load_predictor(r, cfg["runs_dir"]) for r in cfg["runs"]]
render_explanations(preds, cfg["text"], key="t", n_steps=8)
"""


@pytest.mark.app
def test_render_explanations_apptest(tiny_runs, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    runs = [tiny_runs[k].name for k in ("tfidf", "bilstm", "transformer")]
    monkeypatch.setenv("NEWSCLF_EXPLAIN_TEST", json.dumps(
        {"runs_dir": str(tiny_runs["runs_dir"]), "runs": runs, "text": EVIL}))
    at = AppTest.from_string(APP, default_timeout=90).run()
    assert not at.exception, at.exception
    assert [r.options for r in at.radio] == [["Exact contributions"], ["Integrated gradients", "Attention"],
                                             ["Integrated gradients", "Attention", "Attention rollout"]]
    bodies = [h.proto.body for h in at.get("html")]
    assert len(bodies) == 6 and all("<script" not in b for b in bodies)
    assert sum("&lt;<span" in b for b in bodies) == 3
    assert len(at.selectbox) == 3 + 2  # a class selector per run + layer/head (transformer attention)
    at.radio[1].set_value("ig")
    at.radio[2].set_value("rollout")
    at.selectbox[0].set_value(3)
    at.run()
    assert not at.exception, at.exception
    assert len(at.selectbox) == 3
    text = " ".join(h.proto.body for h in at.get("html"))
    assert "Integrated gradients" in text and "rollout" in text and "convergence delta" in text
    st.cache_data.clear()
