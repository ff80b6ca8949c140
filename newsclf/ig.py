"""Integrated Gradients on a torch model's embedding layer (Captum), with its completeness check.

Used by newsclf.explain. fp32, eval mode, Gauss-Legendre quadrature; the convergence delta comes from one
forward pass of input and baseline; memory is bounded by chunking the steps; cuDNN is off around the
attribution of RNNs on CUDA (cuDNN's RNN backward needs training mode). An attribution that misses more
than INCOMPLETE_SHARE of the change it explains gets a plain note (`completeness_note`).
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np

MAX_BATCH_TOKENS = 8192  # IG chunk size (steps x tokens) that bounds activation memory


def _on_cuda(model) -> bool:
    return next(model.parameters()).device.type == "cuda"


def rnn_guard(model):
    """cuDNN RNN backward only works in training mode: disable cuDNN for LSTMs on CUDA."""
    import torch

    if _on_cuda(model) and any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
        return torch.backends.cudnn.flags(enabled=False)
    return nullcontext()


MAX_BATCH_TOKENS_CUDA = 65536  # ... on a GPU: all steps of a 512-token text in two chunks at most


def _chunk(n_steps: int, n_tokens: int, internal_batch_size: int | None, cuda: bool = False) -> int:
    if internal_batch_size:
        return max(1, int(internal_batch_size))
    budget = MAX_BATCH_TOKENS_CUDA if cuda else MAX_BATCH_TOKENS
    return max(1, min(n_steps, budget // max(n_tokens, 1)))


def integrated_gradients(model, layer, input_ids, baseline_ids, attention_mask, target: int | None,
                         n_steps: int, internal_batch_size: int | None):
    """LayerIntegratedGradients of the target logit on `layer`: (token scores (T,), delta,
    probabilities (C,), f(input), f(baseline), target). fp32, eval mode, no autocast.

    Gauss-Legendre quadrature (Captum's "gausslegendre": exact for polynomials of degree 2n-1 along
    the path, so it reaches a given completeness delta in far fewer steps than a Riemann sum).
    delta = sum(attributions) - (f(input) - f(baseline)) is computed from the one forward pass of
    input and baseline made here (Captum's own delta would run both again); cuDNN is turned off for
    RNNs only around the attribution's backward passes; the results come back in one transfer.
    """
    import torch
    from captum.attr import LayerIntegratedGradients

    def forward(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits.float()

    with torch.no_grad():  # no backward here: cuDNN may stay on
        logits = forward(torch.cat([input_ids, baseline_ids]), attention_mask.repeat(2, 1))  # (2, C)
    target = int(logits[0].argmax()) if target is None else target
    lig = LayerIntegratedGradients(forward, layer)
    chunk = _chunk(n_steps, input_ids.shape[1], internal_batch_size, _on_cuda(model))
    with rnn_guard(model):
        attr = lig.attribute(input_ids, baselines=baseline_ids, target=target, additional_forward_args=(attention_mask,),
                             n_steps=n_steps, method="gausslegendre", internal_batch_size=chunk)
    scores = attr.detach().sum(-1)[0].double()  # (T,): sum over the embedding dimension
    f = logits[:, target].double()  # (2,): f(input), f(baseline)
    delta = scores.sum() - (f[0] - f[1])
    out = torch.cat([scores, torch.stack([delta, f[0], f[1]]), torch.softmax(logits[0], -1).double()]).cpu().numpy()
    n = scores.shape[0]
    return out[:n], float(out[n]), out[n + 3:].astype(np.float32), float(out[n + 1]), float(out[n + 2]), target


INCOMPLETE_SHARE = 0.05  # IG whose delta exceeds this share of f(input) - f(baseline) gets a note


def completeness_note(delta: float, f_input: float, f_baseline: float, n_steps: int) -> str | None:
    """A plain note when the IG scores miss more than INCOMPLETE_SHARE of the change they explain."""
    gap = f_input - f_baseline
    if not all(math.isfinite(v) for v in (delta, gap)) or abs(delta) <= INCOMPLETE_SHARE * abs(gap):
        return None
    if gap:
        what = f"the scores miss {abs(delta) / abs(gap):.0%} of the change they explain (delta {delta:.3g}, change {gap:.3g})"
    else:
        what = f"the scores sum to {delta:.3g} although f(text) = f(baseline)"
    return (f"incomplete: {what} at {n_steps} steps; more steps help a transformer, seldom a trained LSTM (its "
            "output can jump along the path from the baseline): read the scores as a ranking, or use the attention view")
