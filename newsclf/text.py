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
    def build(cls, texts: Iterable[str], max_size: int, min_freq: int = 1) -> "Vocab":
        """Most frequent words of `texts` (training split only) seen at least `min_freq` times, at most
        `max_size` entries. The word counts stay on the instance as `train_counts` (not saved)."""
        counts: Counter[str] = Counter()
        doc_freq: Counter[str] = Counter()
        n_docs = 0
        for text in texts:
            toks = words(text)
            counts.update(toks)
            doc_freq.update(set(toks))
            n_docs += 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        most = [w for w, c in ranked if c >= min_freq][: max_size - 2]
        itos = [PAD, UNK] + most
        idf = np.zeros(len(itos), dtype=np.float32)
        for i, w in enumerate(itos[2:], start=2):
            idf[i] = math.log((1 + n_docs) / (1 + doc_freq[w])) + 1.0
        idf[UNK_ID] = math.log(1 + n_docs) + 1.0  # unseen words are as rare as it gets
        vocab = cls(itos, idf)
        vocab.train_counts = dict(counts)
        return vocab

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


class SubwordEncoder:
    """A Hugging Face fast tokenizer's sub-words for the BiLSTM: no special tokens, pieces without a letter
    or digit (punctuation) skipped, truncated to `max_len`; character offsets for explanations.

    Runs on the `tokenizers` library alone (tokenizer.json, plain JSON): loading a run never needs
    transformers nor trusts anything in the run folder beyond that JSON.
    """

    FILE = "subword_encoder.json"
    TOKENIZER = "tokenizer.json"

    def __init__(self, tokenizer, pad_id: int, unk_id: int, max_len: int):
        self.tokenizer = tokenizer  # tokenizers.Tokenizer, truncation and padding off
        self.pad_id, self.unk_id, self.max_len = int(pad_id), int(unk_id), int(max_len)

    @classmethod
    def from_hf(cls, hf_tokenizer, max_len: int) -> "SubwordEncoder":
        """From a transformers fast tokenizer (its Rust backend is copied, not shared)."""
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        backend.no_truncation()
        backend.no_padding()
        unk = hf_tokenizer.unk_token_id if hf_tokenizer.unk_token_id is not None else hf_tokenizer.pad_token_id
        return cls(backend, hf_tokenizer.pad_token_id, unk, max_len)

    def _pieces(self, encoding, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        ids, spans = [], []
        for tid, (s, e) in zip(encoding.ids, encoding.offsets):
            if e > s and _has_alnum(text, s, e):
                ids.append(tid)
                spans.append((s, e))
                if len(ids) == self.max_len:
                    break
        return ids, spans

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        texts = list(texts)
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [self._pieces(enc, text)[0] for enc, text in zip(encodings, texts)]

    def encode_with_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of the sub-words the model sees and their character spans in `text`."""
        return self._pieces(self.tokenizer.encode(text, add_special_tokens=False), text)

    def save(self, directory: Path) -> None:
        self.tokenizer.save(str(Path(directory) / self.TOKENIZER))
        data = {"max_len": self.max_len, "pad_id": self.pad_id, "unk_id": self.unk_id}
        (Path(directory) / self.FILE).write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "SubwordEncoder":
        from tokenizers import Tokenizer

        data = json.loads((Path(directory) / cls.FILE).read_text(encoding="utf-8"))
        tok = Tokenizer.from_file(str(Path(directory) / cls.TOKENIZER))
        tok.no_truncation()
        tok.no_padding()
        return cls(tok, int(data["pad_id"]), int(data["unk_id"]), int(data["max_len"]))


def _has_alnum(text: str, start: int, end: int) -> bool:
    return any(c.isalnum() for c in text[start:end])


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
