"""What every figure builder shares: text from runs made safe for Plotly, and the common layout.

Plotly renders a subset of HTML (<b>, <i>, <a href>, <br>) in titles, axis labels, legends and
hover text. Class names, run names, pretrained names and document words come from run
directories and corpora, which are untrusted: every such string goes through `label` first.
"""
from __future__ import annotations

import re
from typing import Any

import plotly.graph_objects as go

HEIGHT = 380
MARGIN = dict(l=10, r=10, t=50, b=10)

# Bidirectional-text controls (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM, RLM) can make
# displayed text read differently from what it is; each is shown as a visible marker instead.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f]")


def neutralise_bidi(text: str) -> str:
    """`text` with every bidi control character replaced by a visible "[U+XXXX]" marker."""
    return BIDI_CONTROLS.sub(lambda m: f"[U+{ord(m.group()):04X}]", text)


def label(text: Any) -> str:
    """Untrusted text as a Plotly label: bidi controls neutralised, `&`, `<`, `>` as entities."""
    text = neutralise_bidi(str(text))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def labels(texts) -> list[str]:
    return [label(t) for t in texts]


def layout(fig: go.Figure, title: str, height: int = HEIGHT, **kw: Any) -> go.Figure:
    """Title (escaped here: callers pass raw text), height and margins."""
    fig.update_layout(title=dict(text=label(title), x=0.0), height=height, margin=MARGIN, **kw)
    return fig
