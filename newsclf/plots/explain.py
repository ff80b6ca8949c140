"""Pure builders for explanations (no st.*): highlighted-text markup, legend, top-word bars.

Every piece of user text (words and the gaps between them) and every label goes through `_esc`
(bidi controls neutralised, then html.escape) before it enters markup, and through
plots.base.label before it enters a figure.
"""
from __future__ import annotations

import html
import math

from newsclf.explain import METHOD_NAMES, Attribution
from newsclf.plots.base import label, labels, neutralise_bidi

POSITIVE = (26, 150, 65)  # supports the target class
NEGATIVE = (215, 48, 39)  # speaks against it
ATTENTION = (33, 102, 172)  # one colour for non-negative weights
UNSEEN_STYLE = "color:#8a8a8a;background:#ececec;text-decoration:line-through;text-decoration-color:#bbb"
MAX_WORDS_SHOWN = 3000

LEGENDS = {
    "ig": "Integrated gradients: how much each word moved the score of <b>{target}</b> compared with a text of "
          "padding (green: towards it, red: away from it). Word scores plus [CLS]/[SEP]/punctuation add up to "
          "f(text) - f(baseline), up to the convergence delta.",
    "contributions": "Exact contributions of this linear model, contrastive: weight x TF-IDF value of each word "
                     "and bigram for <b>{target}</b> minus the same for its strongest rival class (named below), "
                     "so green words favour {target} and red words the rival (a bigram's share is split over its "
                     "two words; stop words and unknown words get 0). Word scores plus the bias difference add "
                     "up to the difference of the two decision scores.",
    "attention": "Attention: where the model looked when pooling the text into one vector. It is the same for "
                 "every class and says where the model looked, not why it decided.",
    "rollout": "Attention rollout: [CLS]'s attention propagated through all layers (heads averaged, residual "
               "connection added). Shows which words feed the final representation, for every class alike.",
}


def _esc(text: str, quote: bool = True) -> str:
    """User text for markup: bidi controls shown as markers (they could reorder what is displayed), HTML escaped."""
    return html.escape(neutralise_bidi(text), quote=quote)


def scale_of(attr: Attribution) -> float:
    """The largest absolute word score (the full-colour value); 0 when nothing scored."""
    values = [abs(s) for s in attr.scores if s is not None and math.isfinite(s)]
    return max(values, default=0.0)


def colour(score: float | None, scale: float, signed: bool) -> str:
    """CSS background for a score: opacity grows with |score| / scale."""
    if score is None or not math.isfinite(score) or scale <= 0:
        return "transparent"
    alpha = min(abs(score) / scale, 1.0) * 0.85
    rgb = (POSITIVE if score >= 0 else NEGATIVE) if signed else ATTENTION
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.3f})"


def _tip(attr: Attribution, score: float | None) -> str:
    if score is None:
        return "not seen by the model (beyond its token limit)"
    return f"{score:+.4g}" if attr.signed else f"{score:.4g}"


def highlight_html(attr: Attribution, text: str, max_words: int = MAX_WORDS_SHOWN) -> str:
    """`text` as HTML with each word's background coloured by its score; the part the model never
    saw is greyed and struck through, with a marker where it starts."""
    scale = scale_of(attr)
    parts = ['<div class="newsclf-explain" style="white-space:pre-wrap;line-height:1.9;font-size:0.95rem">']
    prev_end, prev_seen = 0, True
    shown = min(len(attr.words), max_words)
    for i in range(shown):
        start, end = attr.offsets[i]
        seen = attr.seen[i]
        gap = _esc(text[prev_end:start])
        if not seen and prev_seen:
            parts.append(gap + '<span style="font-size:0.75rem;color:#555;background:#ffe9a8;padding:0 4px;'
                         'border-radius:3px">&#9986; the model stopped reading here</span> ')
        elif not seen and not prev_seen:
            parts.append(f'<span style="{UNSEEN_STYLE}">{gap}</span>')
        else:
            parts.append(gap)
        word = _esc(text[start:end])
        tip = _esc(_tip(attr, attr.scores[i]), quote=True)
        if seen:
            bg = colour(attr.scores[i], scale, attr.signed)
            parts.append(f'<span title="{tip}" style="background:{bg};border-radius:3px;padding:0 1px">{word}</span>')
        else:
            parts.append(f'<span title="{tip}" style="{UNSEEN_STYLE}">{word}</span>')
        prev_end, prev_seen = end, seen
    if shown < len(attr.words):
        parts.append(f' <i>&hellip; {len(attr.words) - shown:,} more words not shown</i>')
    else:
        tail = _esc(text[prev_end:])
        parts.append(tail if prev_seen else f'<span style="{UNSEEN_STYLE}">{tail}</span>')
    parts.append("</div>")
    return "".join(parts)


def legend_html(attr: Attribution) -> str:
    """A short explanation of the method, with the colour key."""
    text = LEGENDS.get(attr.method, METHOD_NAMES.get(attr.method, attr.method))
    body = text.format(target=_esc(attr.target_label))
    if attr.signed:
        key = (_swatch(POSITIVE, "towards " + attr.target_label) + " " + _swatch(NEGATIVE, "against"))
    else:
        key = _swatch(ATTENTION, "more attention")
    if any(not s for s in attr.seen):
        key += f' <span style="{UNSEEN_STYLE};padding:0 4px">never seen</span>'
    return f'<div style="font-size:0.8rem;color:#444">{body}<br>{key}</div>'


def _swatch(rgb: tuple[int, int, int], caption: str) -> str:
    return (f'<span style="background:rgba({rgb[0]},{rgb[1]},{rgb[2]},0.7);padding:0 6px;border-radius:3px">'
            f"{_esc(caption)}</span>")


def summary_lines(attr: Attribution) -> list[str]:
    """Plain-text facts under the highlight: probabilities, completeness, delta, notes."""
    p = attr.probabilities
    lines = [f"Explaining {attr.target_label} (p={p[attr.target]:.3f}); predicted {attr.predicted_label} "
             f"(p={p[attr.predicted]:.3f})."]
    if attr.method == "ig" and attr.f_input is not None:
        lines.append(f"Target logit {attr.f_input:.4g} vs baseline {attr.f_baseline:.4g}; {attr.n_steps} steps, "
                     f"convergence delta {attr.delta:.2e}.")
    elif attr.method == "contributions" and attr.f_input is not None:
        lines.append(f"Decision-score difference {attr.f_input:.4g} = bias difference {attr.f_baseline:.4g} "
                     f"+ word contributions.")
    if attr.layer is not None:
        lines.append(f"Layer {attr.layer}, " + ("mean of heads." if attr.head is None else f"head {attr.head}."))
    return lines + list(attr.notes)


def plot_attribution_words(attr: Attribution, k: int = 10):
    """Horizontal bars of the top words (signed methods: the k most positive and k most negative)."""
    import plotly.graph_objects as go

    items = attr.top_words(k, 1)
    if attr.signed:
        items = items + attr.top_words(k, -1)
    items = sorted(items, key=lambda kv: kv[1])
    def rgb(v: float) -> str:
        c = (POSITIVE if v >= 0 else NEGATIVE) if attr.signed else ATTENTION
        return f"rgb({c[0]},{c[1]},{c[2]})"
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=labels(w for w, _ in items), orientation="h",
                           marker_color=[rgb(v) for _, v in items],
                           hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    title = ("Top words for / against " if attr.signed else "Most attended words, ") + attr.target_label
    fig.update_layout(title=dict(text=label(title), font=dict(size=13)), height=max(220, 22 * len(items) + 80),
                      margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(type="category", automargin=True),
                      xaxis_title="summed score" if attr.signed else "summed weight", showlegend=False)
    return fig
