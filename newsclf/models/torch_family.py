"""What the torch families (bilstm, transformer) share: batched inference and the explanation hooks.

Inference: length-sorted batches in eval mode, bf16 autocast on CUDA, rows back in input order.
Explanations (used by newsclf.explain): a family turns a text into token ids with character spans
(`explain_tokens`), names the layer that Integrated Gradients attributes to (`ig_layer`), builds
the IG baseline (`ig_baseline`) and computes attention scores (`attention_scores`).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from newsclf.models.base import ModelFamily

Spans = list[tuple[int, int]]


class TorchFamily(ModelFamily):
    """A family trained by newsclf.train.Trainer; models take (input_ids, attention_mask) -> .logits."""

    trained_by_loop = True

    def predict_proba(self, model, encoder, texts: Sequence[str], device: str = "cpu", batch_size: int = 64):
        return torch_predict_proba(model, encoder.encode(list(texts)), encoder.pad_id, device, batch_size)

    # ---- explanation hooks ----------------------------------------------------------------
    def explain_tokens(self, encoder, text: str) -> tuple[list[int], Spans, Spans]:
        """(input ids, character span per id ((0, 0) for special tokens), spans of the tokens the model sees)."""
        raise NotImplementedError

    def ig_layer(self, model):
        """The embedding layer Integrated Gradients attributes to."""
        raise NotImplementedError

    def ig_baseline(self, input_ids, spans: Spans, encoder):
        """The IG baseline (1, T): every token replaced by padding (special tokens kept where the family needs them)."""
        import torch

        return torch.full_like(input_ids, encoder.pad_id)

    def attention_scores(self, model, input_ids, mask, method: str,
                         layer: int | None, head: int | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(scores (T,), probabilities (C,), extra Attribution fields) of an attention method."""
        raise NotImplementedError


def torch_predict_proba(model, ids: Sequence[Sequence[int]], pad_id: int, device, batch_size: int = 64) -> np.ndarray:
    """Batched, length-sorted inference in eval mode (bf16 autocast on CUDA); rows in input order.

    No per-batch host sync: batches go over from pinned memory without blocking, the real lengths are
    given from the host (`newsclf.batching.host_lengths`), probabilities stay on the device and come
    back in one transfer at the end.
    """
    from contextlib import nullcontext

    import torch

    from newsclf.batching import eval_batches, host_lengths, to_device

    device = torch.device(device)
    cuda = device.type == "cuda"
    if model.training:  # loaded models already are in eval mode: walking every module per call costs ~1 ms
        model.eval()
    chunks, rows = [], []
    with torch.inference_mode():
        for idx, batch in eval_batches(ids, batch_size, pad_id):
            x, mask = to_device(batch["input_ids"], device), to_device(batch["attention_mask"], device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16) if cuda else nullcontext(), \
                    host_lengths([len(ids[i]) for i in idx]):
                logits = model(input_ids=x, attention_mask=mask).logits
            chunks.append(torch.softmax(logits.float(), dim=-1))  # (B, C), on the device
            rows.append(idx)
        if not chunks:
            return None
        probs = torch.cat(chunks).cpu().numpy()  # the one transfer
    out = np.empty(probs.shape, dtype=np.float32)
    out[np.concatenate(rows)] = probs
    return out
