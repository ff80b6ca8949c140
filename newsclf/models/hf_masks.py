"""Attention masks that a Hugging Face encoder can use without waiting for the GPU.

Given a 2-D padding mask, transformers 5 asks the device whether any token is padded
(`masking_utils._ignore_bidirectional_mask_sdpa`: `padding_mask.all()`), a host sync on every forward
pass: the host stops queueing kernels until the GPU has caught up. The host already knows the answer
(`newsclf.batching.host_lengths`), so a forward pre-hook hands the model what it would build itself:

* no mask when no row of the batch is padded (what transformers does after its check), else
* the prepared 4-D boolean mask (B, 1, 1, T), which the model passes to SDPA as it is.

The hook is installed only on models that use SDPA attention, attend globally in every layer (a
prepared mask is taken as it is, so a sliding-window or local-attention layer would lose its window),
and give the same logits with the prepared mask as with the 2-D one (checked once on a small padded
batch when the model is built or loaded); any other model keeps the 2-D mask. Under torch.compile the
hook steps aside (transformers skips its check while tracing).
"""
from __future__ import annotations

import torch

from newsclf.batching import host_batch_unpadded

_INSTALLED = "_newsclf_prepared_masks"


def use_prepared_masks(model) -> bool:
    """Install the pre-hook on `model` if it takes prepared masks with unchanged logits; True if installed."""
    if getattr(model, _INSTALLED, False):
        return True
    if getattr(model.config, "_attn_implementation", None) != "sdpa" or _windowed(model.config) \
            or not _same_logits(model):
        return False
    model.register_forward_pre_hook(_prepare_mask, with_kwargs=True)
    setattr(model, _INSTALLED, True)
    return True


WINDOW_KEYS = ("sliding_window", "local_attention", "attention_window", "window_size", "local_attention_window")


def _windowed(config) -> bool:
    """Does any layer attend within a window (its mask is more than padding)?"""
    for key in WINDOW_KEYS:
        if getattr(config, key, None):
            return True
    layer_types = getattr(config, "layer_types", None) or ()
    return any(t != "full_attention" for t in layer_types)


def _prepare_mask(module, args, kwargs):
    mask = kwargs.get("attention_mask")
    if mask is None or mask.dim() != 2 or module.config._attn_implementation != "sdpa" \
            or torch.compiler.is_compiling():
        return None  # e.g. a copy switched to eager attention for explanations: it adds masks, keep the 2-D one
    if host_batch_unpadded(mask.shape[0], mask.shape[1]):
        kwargs["attention_mask"] = None
    else:
        kwargs["attention_mask"] = mask[:, None, None, :].bool()  # (B, 1, 1, T): a device op, no sync
    return args, kwargs


@torch.no_grad()
def _same_logits(model) -> bool:
    """One small padded batch through the model with the 2-D mask and with the prepared one."""
    was_training = model.training
    device = next(model.parameters()).device
    vocab = int(getattr(model.config, "vocab_size", 0) or 0)
    if vocab < 2:
        return False
    ids = (torch.arange(2 * 64, device=device).view(2, 64) * 7 + 1) % vocab  # (2, 64)
    mask = torch.ones_like(ids)
    mask[1, 40:] = 0
    model.eval()
    try:
        plain = model(input_ids=ids, attention_mask=mask).logits
        prepared = model(input_ids=ids, attention_mask=mask[:, None, None, :].bool()).logits
        unpadded = model(input_ids=ids[:1], attention_mask=None).logits
        return bool(torch.allclose(plain, prepared, rtol=1e-4, atol=1e-5)
                    and torch.allclose(plain[:1], unpadded, rtol=1e-4, atol=1e-5))
    except Exception:  # a model that rejects a 4-D mask keeps the 2-D one
        return False
    finally:
        model.train(was_training)
