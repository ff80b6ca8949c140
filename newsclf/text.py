"""Words, vocabularies and encoders.

One word splitter (`word_spans`) is shared by the BiLSTM vocabulary and by explanation
alignment, so every model's scores line up on the same words. An *encoder* turns texts into
lists of token ids (truncated, unpadded); batching pads them (see `pad_batch`).
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

WORD_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+")
PAD_ID = 0
UNK_ID = 1
PAD, UNK = "<pad>", "<unk>"


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """Words with character offsets: [(word, start, end)] (original casing kept)."""
    return [(m.group(0), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def words(text: str) -> list[str]:
    """Lower-cased words of `text` (the BiLSTM's tokens)."""
    return [m.group(0).lower() for m in WORD_RE.finditer(text)]


class Encoder(Protocol):
    """Texts -> truncated token-id lists; `pad_id` fills batches."""

    pad_id: int
    max_len: int

    def encode(self, texts: Sequence[str]) -> list[list[int]]: ...

    def save(self, directory: Path) -> None: ...


@dataclass
class Vocab:
    """Word vocabulary with PAD=0, UNK=1 and smoothed IDF per id (for TF-IDF weighting)."""

    itos: list[str]
    idf: np.ndarray  # (V,) float32; 0 for PAD

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int) -> "Vocab":
        """Most frequent words of `texts` (training split only), at most `max_size` entries."""
        counts: Counter[str] = Counter()
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        for text in texts:
            toks = words(text)
            counts.update(toks)
            doc_freq.update(set(toks))
            n_docs += 1
        most = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_size - 2]]
        itos = [PAD, UNK] + most
        idf = np.zeros(len(itos), dtype=np.float32)
        for i, w in enumerate(itos[2:], start=2):
            idf[i] = math.log((1 + n_docs) / (1 + doc_freq[w])) + 1.0
        idf[UNK_ID] = math.log(1 + n_docs) + 1.0  # unseen words are as rare as it gets
        return cls(itos, idf)

    def to_json(self) -> dict:
        return {"itos": self.itos, "idf": [round(float(x), 6) for x in self.idf]}

    @classmethod
    def from_json(cls, data: dict) -> "Vocab":
        itos, idf = data["itos"], data["idf"]
        if not isinstance(itos, list) or len(itos) != len(idf) or itos[:2] != [PAD, UNK]:
            raise ValueError("vocab.json is malformed")
        return cls(list(itos), np.asarray(idf, dtype=np.float32))


class WordEncoder:
    """The BiLSTM's encoder: regex words -> vocabulary ids, truncated to `max_len`."""

    FILE = "vocab.json"
    pad_id = PAD_ID

    def __init__(self, vocab: Vocab, max_len: int):
        self.vocab = vocab
        self.max_len = max_len

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        stoi = self.vocab.stoi
        out = []
        for text in texts:
            toks = words(text)[: self.max_len]
            out.append([stoi.get(t, UNK_ID) for t in toks])
        return out

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of the words the model sees and their character spans in `text`."""
        spans = word_spans(text)[: self.max_len]
        ids = [self.vocab.stoi.get(w.lower(), UNK_ID) for w, _, _ in spans]
        return ids, [(s, e) for _, s, e in spans]

    def save(self, directory: Path) -> None:
        data = {"max_len": self.max_len, **self.vocab.to_json()}
        (Path(directory) / self.FILE).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "WordEncoder":
        data = json.loads((Path(directory) / cls.FILE).read_text(encoding="utf-8"))
        return cls(Vocab.from_json(data), int(data["max_len"]))


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int, multiple_of: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Pad to the longest sequence (rounded up to `multiple_of`): ids (B, T) int64, mask (B, T) int64.

    An empty sequence gets one pad position with mask 0 so shapes stay valid.
    """
    longest = max((len(s) for s in seqs), default=1) or 1
    if multiple_of > 1:
        longest = int(math.ceil(longest / multiple_of) * multiple_of)
    ids = np.full((len(seqs), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), longest), dtype=np.int64)
    for i, seq in enumerate(seqs):
        ids[i, : len(seq)] = seq
        mask[i, : len(seq)] = 1
    return ids, mask
