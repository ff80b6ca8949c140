"""Attention maps as explanations: one layer/head's [CLS] row, or attention rollout across layers."""
from __future__ import annotations

import torch

from newsclf.errors import InputError


def select_attention(stack: torch.Tensor, method: str, layer: int | None, head: int | None):
    """(L, H, T, T) attentions -> ([CLS] row (T,), layer, head) for one layer/head, or for the rollout."""
    n_layers, n_heads = stack.shape[0], stack.shape[1]
    if method == "rollout":
        return attention_rollout(stack)[0], None, None
    layer = n_layers - 1 if layer is None else int(layer)
    if not -n_layers <= layer < n_layers:
        raise InputError(f"layer: {layer} is out of range (0..{n_layers - 1})")
    layer %= n_layers
    if head is not None and not 0 <= int(head) < n_heads:
        raise InputError(f"head: {head} is out of range (0..{n_heads - 1})")
    att = stack[layer].mean(0) if head is None else stack[layer, int(head)]
    return att[0], layer, None if head is None else int(head)


def attention_rollout(stack: torch.Tensor) -> torch.Tensor:
    """Abnar & Zuidema (2020): per layer 0.5 * mean-over-heads attention + 0.5 * I, rows renormalised,
    multiplied from the first layer up. (L, H, T, T) -> (T, T); row i = how much token i draws from each input."""
    n_tokens = stack.shape[-1]
    eye = torch.eye(n_tokens, dtype=stack.dtype)
    rollout = eye
    for att in stack:
        a = 0.5 * att.mean(0) + 0.5 * eye
        a = a / a.sum(-1, keepdim=True)
        rollout = a @ rollout
    return rollout
