"""Prepared attention masks for HF encoders (newsclf.models.hf_masks): the model's forward pass never
asks the device whether a batch is padded, and gives the same logits as with the 2-D mask."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from newsclf import batching
from newsclf.models import hf_masks
from newsclf.models import transformer as tx
from newsclf.train import DistInfo, Trainer, set_seed
from tests.test_models_transformer import KINDS, _cfg, _trainer

SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


class _Syncs:
    """Host-sync Tensor methods called from a file whose path contains `where` (any file when None)."""

    def __init__(self, monkeypatch, where: str = "transformers"):
        self.calls: list[str] = []
        for name in SYNC_METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._spy(name, getattr(torch.Tensor, name), where))

    def _spy(self, name, original, where):
        def wrapper(tensor, *args, **kwargs):
            frame = sys._getframe(1)
            if where in frame.f_code.co_filename:
                self.calls.append(f"{name} {frame.f_code.co_filename}:{frame.f_lineno}")
            return original(tensor, *args, **kwargs)
        return wrapper


def _batch(vocab: int = 50):
    torch.manual_seed(1)
    ids = torch.randint(5, vocab, (4, 16))
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0
    mask[2, 3:] = 0
    return ids, mask


@pytest.mark.parametrize("kind", KINDS)
def test_sdpa_models_get_the_hook_and_eager_ones_keep_the_plain_mask(kind, tiny_model_dirs):
    model, _ = tx.load(tiny_model_dirs[kind])
    assert getattr(model, hf_masks._INSTALLED, False)
    eager, _ = tx.load(tiny_model_dirs[kind], attn_implementation="eager")
    assert not getattr(eager, hf_masks._INSTALLED, False)
    assert hf_masks.use_prepared_masks(model)  # a second call installs nothing more
    assert len(model._forward_pre_hooks) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_the_prepared_mask_gives_the_logits_of_the_plain_mask(kind, tiny_model_dirs):
    model, _ = tx.load(tiny_model_dirs[kind])
    ids, mask = _batch()
    with torch.no_grad():
        plain = model.forward(input_ids=ids, attention_mask=mask).logits  # .forward: no hooks
        for lengths in (mask.sum(1).numpy(), None):  # host lengths given, or not (a 4-D mask either way)
            with batching.host_lengths(lengths):
                hooked = model(input_ids=ids, attention_mask=mask).logits
            torch.testing.assert_close(hooked, plain, rtol=1e-5, atol=1e-6)
        full = torch.ones_like(mask)
        with batching.host_lengths(np.full(4, 16)):  # no row padded: no mask at all, as transformers does
            hooked = model(input_ids=ids, attention_mask=full).logits
        torch.testing.assert_close(hooked, model.forward(input_ids=ids, attention_mask=full).logits)


@pytest.mark.parametrize("kind", KINDS)
def test_a_copy_switched_to_eager_attention_keeps_the_plain_mask(kind, tiny_model_dirs):
    """Explanations switch a copy of the model (hooks included) to eager attention, which adds the mask to
    the scores: a prepared boolean mask would not mask there."""
    import copy

    model, _ = tx.load(tiny_model_dirs[kind])
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    ids, mask = _batch()
    with torch.no_grad():
        want = eager.forward(input_ids=ids, attention_mask=mask).logits
        got = eager(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("kind", KINDS)
def test_a_training_step_of_an_hf_encoder_syncs_nowhere_in_transformers(kind, tiny_model_dirs, fixture_data_home,
                                                                        monkeypatch):
    from newsclf.data import load_dataset

    data = load_dataset("seed", fixture_data_home)
    trainer = _trainer(_cfg(tiny_model_dirs[kind], fixture_data_home, epochs=1), data)
    trainer.evaluate = lambda: (1.0, 0.5)  # the hot loop only
    syncs = _Syncs(monkeypatch, where="transformers")
    steps = [e for e in trainer.fit() if e["type"] == "step"]
    assert len(steps) == 4 and syncs.calls == []
    # without the hook, the same forward pass asks the device once per call (what the hook removes)
    with torch.no_grad():
        trainer.model.forward(input_ids=torch.tensor([[5, 6, 7]]), attention_mask=torch.tensor([[1, 1, 0]]))
    assert syncs.calls and "masking_utils" in syncs.calls[0]


def test_a_model_that_refuses_a_prepared_mask_keeps_the_plain_one():
    class Config:
        _attn_implementation = "sdpa"
        vocab_size = 30

    class Refuses(torch.nn.Module):
        config = Config()

        def __init__(self):
            super().__init__()
            self.embedding = torch.nn.Embedding(30, 4)

        def forward(self, input_ids, attention_mask=None):
            if attention_mask is None or attention_mask.dim() != 2:
                raise ValueError("a 2-D mask only")
            return type("Out", (), {"logits": self.embedding(input_ids).sum(1)})()

    model = Refuses()
    assert not hf_masks.use_prepared_masks(model)
    assert not model._forward_pre_hooks and model.training  # left as it was


def test_an_encoder_with_windowed_layers_keeps_the_plain_mask():
    """A prepared mask is taken as it is: a sliding-window layer (ModernBERT's local attention) would attend
    globally on padded batches, so such models never get the hook (the probe alone is too short to see it)."""
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, local_attention=8, classifier_pooling="cls", num_labels=4,
                              pad_token_id=0, attn_implementation="sdpa")
    model = ModernBertForSequenceClassification(config)
    assert model.config._attn_implementation == "sdpa" and hf_masks._windowed(model.config)
    assert not hf_masks.use_prepared_masks(model) and not model._forward_pre_hooks


def test_the_hook_steps_aside_under_torch_compile(tiny_model_dirs, monkeypatch):
    model, _ = tx.load(tiny_model_dirs["bert"])
    ids, mask = _batch()
    seen = []
    real_forward = type(model).forward

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("attention_mask"))
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "forward", spy)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    assert seen[-1] is mask  # the 2-D mask, untouched: transformers skips its own check while tracing
