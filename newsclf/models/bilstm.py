"""The study's BiLSTM with attention pooling over TF-IDF-weighted embeddings, and the BiLSTM+ recipe.

embeddings (random, GloVe/word2vec/fastText vectors, or a local HF encoder's input table over its
sub-words) x per-token TF-IDF weight -> word dropout (training) -> dropout -> BiLSTM (128 per direction,
dropout between layers) -> attention pooling (Linear 2H->1, softmax over real tokens only), optionally
concatenated with max pooling -> dropout -> Linear -> C. Saved as safetensors + arch JSON + the
encoder's JSON (a word vocabulary, or tokenizer.json for sub-words).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from newsclf import embeddings as emb
from newsclf.config import ConfigError, resolve_data_home
from newsclf.models.lstm_cpu import masked_bilstm, packed_bilstm
from newsclf.models.output import ClassifierOutput
from newsclf.text import PAD_ID, SubwordEncoder, Vocab, WordEncoder

WEIGHTS = "model.safetensors"
ARCH = "bilstm_config.json"
PRETRAINED_STD = 1.0  # a HF encoder's table (std ~0.05) is rescaled to the spread of the random init (N(0, 1))
log = logging.getLogger("newsclf")


@dataclass
class BiLSTMArch:
    """The saved architecture; keys added later have defaults so older best/ folders still load."""

    vocab_size: int
    num_labels: int
    embed_dim: int = 300
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.3
    tfidf_weighting: bool = True
    embeddings: str = "random"  # a short label of the source: "random", "glove-6B-300d", "minilm (sub-words)"
    embed_dropout: float | None = None  # None: `dropout` (the study)
    word_dropout: float = 0.0
    pooling: str = "attention"  # or "attention+max"
    pad_id: int = PAD_ID
    tokens: str = "words"  # "words" (WordEncoder) or "subwords" (SubwordEncoder)
    embeddings_info: dict[str, Any] | None = None  # source, dim, vocab_coverage, token_coverage

    @classmethod
    def from_json(cls, data: dict) -> "BiLSTMArch":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class TfidfWeighting(nn.Module):
    """Per-token weight (1 + log tf) * idf within each document, normalised to mean 1 over real tokens."""

    def __init__(self, idf: torch.Tensor):
        super().__init__()
        self.register_buffer("idf", idf.float(), persistent=True)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        maskf = mask.float()  # (B, T)
        # term frequency of each position's token inside its own document
        same = (input_ids.unsqueeze(2) == input_ids.unsqueeze(1)).float() * maskf.unsqueeze(1)  # (B, T, T)
        tf = same.sum(-1).clamp(min=1.0)  # (B, T)
        weight = (1.0 + torch.log(tf)) * self.idf[input_ids] * maskf
        mean = weight.sum(1, keepdim=True) / maskf.sum(1, keepdim=True).clamp(min=1.0)
        return weight / mean.clamp(min=1e-6)  # (B, T)


class BiLSTMAttention(nn.Module):
    """forward(input_ids (B,T), attention_mask (B,T)) -> ClassifierOutput(logits (B,C), attentions=((B,T),))."""

    def __init__(self, arch: BiLSTMArch, idf: torch.Tensor | None = None):
        super().__init__()
        self.arch = arch
        self.embedding = nn.Embedding(arch.vocab_size, arch.embed_dim, padding_idx=arch.pad_id)
        self.weighting = TfidfWeighting(idf if idf is not None else torch.ones(arch.vocab_size))
        self.embed_dropout = nn.Dropout(arch.dropout if arch.embed_dropout is None else arch.embed_dropout)
        self.lstm = nn.LSTM(arch.embed_dim, arch.hidden_size, num_layers=arch.num_layers, batch_first=True,
                            bidirectional=True, dropout=arch.dropout if arch.num_layers > 1 else 0.0)
        self.attention = nn.Linear(2 * arch.hidden_size, 1)
        self.dropout = nn.Dropout(arch.dropout)
        pooled = 2 * arch.hidden_size * (2 if arch.pooling == "attention+max" else 1)
        self.classifier = nn.Linear(pooled, arch.num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> ClassifierOutput:
        if attention_mask is None:
            attention_mask = (input_ids != self.arch.pad_id).long()
        x = self.embedding(input_ids)  # (B, T, E)
        if self.training and self.arch.word_dropout > 0:  # drop whole tokens: no word is indispensable
            keep = torch.rand(input_ids.shape, device=x.device) >= self.arch.word_dropout  # (B, T)
            x = x * keep.unsqueeze(-1)
        if self.arch.tfidf_weighting:
            x = x * self.weighting(input_ids, attention_mask).unsqueeze(-1)
        x = self.embed_dropout(x)
        h = self._encode(x, attention_mask)  # (B, T, 2H)
        scores = self.attention(h).squeeze(-1)  # (B, T)
        real = attention_mask.bool()
        real = real | (~real.any(1, keepdim=True) & _first_position(real))  # an empty doc attends to slot 0
        scores = scores.masked_fill(~real, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T), zero on padding
        pooled = torch.bmm(weights.unsqueeze(1), h).squeeze(1)  # (B, 2H)
        if self.arch.pooling == "attention+max":
            peak = h.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(1)  # (B, 2H)
            pooled = torch.cat([pooled, peak], dim=-1)  # (B, 4H)
        logits = self.classifier(self.dropout(pooled))
        return ClassifierOutput(logits=logits, attentions=(weights,))

    def _encode(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """nn.LSTM on a packed sequence (cuDNN on CUDA) on a GPU and, on CPU, outside training (inference,
        validation, IG: 2.2x faster there); the masked CPU LSTM (same math, same weights) for CPU training,
        where nn.LSTM's backward would accumulate weight gradients once per timestep.

        pack_padded_sequence needs the lengths on the host: the caller's `batching.host_lengths`
        gives them without a device sync; only a call without it copies them back from the device.
        """
        if x.is_cuda or not self.training:
            from newsclf.batching import current_host_lengths

            host = current_host_lengths(x.size(0))
            return packed_bilstm(self.lstm, x, host if host is not None else attention_mask.sum(1).cpu())
        return masked_bilstm(self.lstm, x, attention_mask, self.lstm.dropout, self.training)

    def input_embeddings(self) -> nn.Module:
        return self.embedding

    def head_parameter_names(self) -> list[str]:
        return ["attention.weight", "attention.bias", "classifier.weight", "classifier.bias"]


def _first_position(mask: torch.Tensor) -> torch.Tensor:
    first = torch.zeros_like(mask)
    first[:, 0] = True
    return first


# ---- building, embeddings, save/load -------------------------------------------------------------
def build(cfg, train_texts: Sequence[str], label_names: Sequence[str]):
    """A fresh model and encoder; the vocabulary (or sub-word IDF) comes from the training split only."""
    spec = cfg.embeddings or "random"
    if emb.source_kind(spec) == "hf":
        return _build_subwords(cfg, train_texts, label_names, emb.local_path(spec))
    vocab = Vocab.build(train_texts, cfg.vocab_size, cfg.min_freq or 1)
    arch = _arch(cfg, len(vocab), len(label_names), emb.describe(spec), PAD_ID, "words")
    model = BiLSTMAttention(arch, torch.from_numpy(vocab.idf))
    if spec != "random":
        path = emb.local_path(spec, resolve_data_home(cfg.data_home or None))
        info = load_vectors_into(model.embedding, vocab, path, emb.describe(spec))
        arch.embeddings_info = info.as_dict()
        _log_coverage(arch.embeddings_info)
    return model, WordEncoder(vocab, cfg.max_len)


def _arch(cfg, vocab_size: int, num_labels: int, label: str, pad_id: int, tokens: str) -> BiLSTMArch:
    return BiLSTMArch(vocab_size=vocab_size, num_labels=num_labels, embed_dim=cfg.embed_dim,
                      hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, dropout=cfg.dropout,
                      tfidf_weighting=cfg.tfidf_weighting, embeddings=label, embed_dropout=cfg.embed_dropout,
                      word_dropout=cfg.word_dropout or 0.0, pooling=cfg.pooling or "attention", pad_id=pad_id,
                      tokens=tokens)


def _build_subwords(cfg, train_texts, label_names, path: Path):
    """The BiLSTM over a local HF encoder's sub-words, its embedding table copied from the model."""
    encoder = SubwordEncoder.from_hf(emb.hf_tokenizer(path), cfg.max_len)
    table = emb.hf_embedding_table(path)  # (V, E)
    if table.shape[1] != cfg.embed_dim:
        raise ConfigError("embed_dim", f"must be {table.shape[1]} for {path}")
    vocab_size = table.shape[0]
    ids = [[t if t < vocab_size else encoder.unk_id for t in seq] for seq in encoder.encode(train_texts)]
    doc_freq = np.zeros(vocab_size, dtype=np.float64)
    counts = np.zeros(vocab_size, dtype=np.int64)
    for seq in ids:
        doc_freq[np.unique(np.asarray(seq, dtype=np.int64))] += 1
        np.add.at(counts, np.asarray(seq, dtype=np.int64), 1)
    idf = (np.log((1 + len(ids)) / (1 + doc_freq)) + 1.0).astype(np.float32)  # unseen pieces: the rarest
    idf[encoder.pad_id] = 0.0
    label = emb.describe(str(path))
    arch = _arch(cfg, vocab_size, len(label_names), label, encoder.pad_id, "subwords")
    model = BiLSTMAttention(arch, torch.from_numpy(idf))
    model.embedding.weight.data.copy_(torch.from_numpy(_rescaled(table)))
    model.embedding.weight.data[encoder.pad_id] = 0.0
    seen = counts > 0
    seen[encoder.pad_id] = False
    known = seen.copy()
    known[encoder.unk_id] = False
    arch.embeddings_info = emb.Coverage(label, table.shape[1], float(known.sum() / max(seen.sum(), 1)),
                                        float(counts[known].sum() / max(counts.sum(), 1))).as_dict()
    _log_coverage(arch.embeddings_info)
    return model, encoder


def _rescaled(table: np.ndarray) -> np.ndarray:
    std = float(table.std()) or 1.0
    return (table * (PRETRAINED_STD / std)).astype(np.float32)


def load_vectors_into(embedding: nn.Embedding, vocab: Vocab, path: Path, label: str = "") -> emb.Coverage:
    """Copy pretrained vectors (any format of newsclf.embeddings) into `embedding` for words of `vocab`.

    Found vectors are copied as they are; words without one keep random vectors drawn with the same
    spread. ValueError when no word is found.
    """
    dim = embedding.embedding_dim
    words = vocab.itos[2:]
    found = emb.read_vectors(Path(path), dim, set(words))
    if not found:
        raise ValueError(f"embeddings: no word of the vocabulary found in {path} (does it hold {dim}-d vectors?)")
    weight = embedding.weight.data
    rows = [i for i, w in enumerate(vocab.itos) if i > 1 and w in found]
    table = np.stack([found[vocab.itos[i]] for i in rows])
    weight.mul_(float(table.std()) / max(float(weight[2:].std()), 1e-6))
    weight[torch.as_tensor(rows)] = torch.from_numpy(table)
    weight[embedding.padding_idx].zero_()
    counts = getattr(vocab, "train_counts", None) or {w: 1 for w in words}
    return emb.coverage(label or Path(path).name, dim, words, set(found), counts)


def _log_coverage(info: dict[str, Any]) -> None:
    log.info("embeddings %s (%dd): %.1f %% of the vocabulary, %.1f %% of the training tokens have a "
             "pretrained vector", info["source"], info["dim"], 100 * info["vocab_coverage"],
             100 * info["token_coverage"])


def save(model: BiLSTMAttention, encoder, directory: Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    (directory / ARCH).write_text(json.dumps(asdict(model.arch), indent=2), encoding="utf-8")
    encoder.save(directory)


def load(directory: Path, device: str | torch.device = "cpu"):
    directory = Path(directory)
    arch = BiLSTMArch.from_json(json.loads((directory / ARCH).read_text(encoding="utf-8")))
    model = BiLSTMAttention(arch)
    model.load_state_dict(load_file(str(directory / WEIGHTS), device="cpu"))
    encoder = SubwordEncoder.load(directory) if arch.tokens == "subwords" else WordEncoder.load(directory)
    return model.to(device).eval(), encoder


def check_glove(path: Path, dim: int, lines: int = 1000) -> None:
    """Kept for callers of the old API: refuse a file without `dim`-d vectors (ConfigError on `glove`)."""
    try:
        emb.check(str(path), dim)
    except emb.EmbeddingsError as exc:
        raise ConfigError("glove", str(exc).removeprefix("embeddings: ")) from None
