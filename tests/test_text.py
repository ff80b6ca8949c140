"""Words, the BiLSTM vocabulary and encoder, padding."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from newsclf.text import PAD, PAD_ID, UNK, UNK_ID, Vocab, WordEncoder, pad_batch, word_spans, words

TEXTS = ["The puck hit the goalie.", "The goalie's mask and the puck", "Orbit of the shuttle 1993"]


def test_words_and_spans():
    text = "Don't PANIC: 42 towels!"
    assert words(text) == ["don't", "panic", "42", "towels"]
    spans = word_spans(text)
    assert [w for w, _, _ in spans] == ["Don't", "PANIC", "42", "towels"]
    assert all(text[s:e] == w for w, s, e in spans)
    assert words("!!! ??? ...") == []


def test_vocab_pad_unk_order_and_size():
    vocab = Vocab.build(TEXTS, max_size=5)
    assert vocab.itos[:2] == [PAD, UNK] and PAD_ID == 0 and UNK_ID == 1
    assert len(vocab) == 5
    assert vocab.itos[2] == "the"  # most frequent first
    assert vocab.idf[PAD_ID] == 0
    assert vocab.idf.dtype == np.float32 and len(vocab.idf) == len(vocab)


def test_vocab_idf_rare_words_weigh_more():
    vocab = Vocab.build(TEXTS, max_size=100)
    assert vocab.idf[vocab.stoi["orbit"]] > vocab.idf[vocab.stoi["puck"]] > vocab.idf[vocab.stoi["the"]]
    assert vocab.idf[UNK_ID] >= vocab.idf.max() - 1e-6


def test_vocab_comes_from_the_given_texts_only():
    vocab = Vocab.build(TEXTS[:2], max_size=100)
    assert "shuttle" not in vocab.stoi and "goalie" in vocab.stoi


def test_encoder_truncates_maps_unknown_and_round_trips(tmp_path: Path):
    enc = WordEncoder(Vocab.build(TEXTS, max_size=100), max_len=4)
    ids = enc.encode(["the puck zebra goalie orbit shuttle", ""])
    assert len(ids[0]) == 4 and ids[1] == []
    assert ids[0][2] == UNK_ID and ids[0][0] == enc.vocab.stoi["the"]
    spans_ids, spans = enc.encode_with_spans("The puck zebra goalie orbit")
    assert spans_ids == ids[0] and spans[1] == (4, 8)
    enc.save(tmp_path)
    back = WordEncoder.load(tmp_path)
    assert back.max_len == 4 and back.vocab.itos == enc.vocab.itos
    np.testing.assert_allclose(back.vocab.idf, enc.vocab.idf, atol=1e-6)
    assert back.encode(TEXTS) == enc.encode(TEXTS)


def test_malformed_vocab_json_is_refused():
    with pytest.raises(ValueError):
        Vocab.from_json({"itos": ["a", "b", "c"], "idf": [0, 1, 1]})
    with pytest.raises(ValueError):
        Vocab.from_json({"itos": [PAD, UNK, "c"], "idf": [0, 1]})


def test_pad_batch_pads_to_multiple_of_8_and_keeps_empty_rows_valid():
    ids, mask = pad_batch([[5, 6, 7], [], [9]], pad_id=0)
    assert ids.shape == mask.shape == (3, 8)
    assert mask.sum(1).tolist() == [3, 0, 1]
    assert ids[0, :3].tolist() == [5, 6, 7] and (ids[0, 3:] == 0).all()
    ids, mask = pad_batch([[]], pad_id=0, multiple_of=1)
    assert ids.shape == (1, 1) and mask.sum() == 0
