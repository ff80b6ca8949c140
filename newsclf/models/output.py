"""The one forward contract: every torch model returns `.logits` (and `.attentions` where it has them)."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, C)
    attentions: tuple[torch.Tensor, ...] | None = None  # BiLSTM: ((B, T),)
