"""newsclf.explain: completeness, attention, word alignment, truncation, guards, the explain CLI."""
from __future__ import annotations

import copy
import dataclasses
import json
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest

from newsclf import explain as ex
from newsclf.models.transformer import transformer_tokens
from newsclf.predict import InputError, Predictor, load_predictor
from newsclf.text import pad_batch, word_spans

GRAPHICS = "The rendering of pixels and polygons: graphics render image pixel polygon shading texture. "
MIXED = GRAPHICS + "Hockey puck goalie, the rink! Don't render 42 bitmaps."


# ---- helpers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictors(tiny_runs) -> dict[str, Predictor]:
    return {k: load_predictor(tiny_runs[k], tiny_runs["runs_dir"]) for k in ("tfidf", "bilstm", "transformer")}


@pytest.fixture(scope="module")
def sharp_bilstm(predictors) -> Predictor:
    """The tiny BiLSTM with a scaled-up head so f(input) - f(baseline) is far from 0."""
    import torch

    model = copy.deepcopy(predictors["bilstm"].model)
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    return dataclasses.replace(predictors["bilstm"], model=model)


@pytest.fixture(scope="module")
def sharp_distilbert(tiny_model_dirs) -> Predictor:
    """A tiny random DistilBERT (2 layers, 2 heads, sub-word vocab) with large weights: logits of order 1."""
    import torch

    from newsclf.models import transformer

    model, encoder = transformer.load(tiny_model_dirs["distilbert"])
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.25)
    return Predictor(Path(tiny_model_dirs["distilbert"]), "transformer", ["neg", "pos"], {}, model, encoder)


def word_total(attr: ex.Attribution) -> float:
    return float(np.nansum(attr.score_array()))


# ---- TF-IDF ----------------------------------------------------------------------------------
def test_tfidf_contributions_add_up_to_decision_score(predictors):
    """Contrastive: target minus its strongest rival; words + bias difference == decision difference."""
    from newsclf.models.tfidf import contrast_class

    p = predictors["tfidf"]
    decision = p.model.decision_function([MIXED])[0]
    for target in (None, "rec.sport.hockey", 3):
        attr = ex.explain(p, MIXED, target=target)
        t = attr.target
        rival = contrast_class(decision, t)
        assert rival != t
        gap = decision[t] - decision[rival]
        assert attr.method == "contributions" and attr.signed and attr.delta is None
        assert word_total(attr) + attr.unaligned + attr.f_baseline == pytest.approx(gap, rel=1e-4, abs=1e-3)
        assert attr.f_input == pytest.approx(gap, rel=1e-4, abs=1e-5)
        assert any("contrastive" in n and p.label_names[rival] in n for n in attr.notes)
    attr = ex.explain(p, MIXED)
    assert attr.target == int(np.argmax(decision)) == attr.predicted
    assert attr.f_input >= 0  # the prediction beats its runner-up
    assert [w for w, _, _ in word_spans(MIXED)] == attr.words and all(attr.seen)
    assert attr.scores[attr.words.index("The")] == 0.0  # stop word
    assert ex.explain(p, MIXED, method="ig").method == "contributions"  # IG of a linear model = its contributions
    with pytest.raises(InputError, match="no 'attention'"):
        ex.explain(p, MIXED, method="attention")


NASA = "NASA delayed the space shuttle launch; the orbit of the satellite and the moon mission were discussed."


def test_tfidf_explanation_has_words_against_another_class(predictors):
    """Complement NB pushes every class up with every word: only a contrast can say "against"."""
    attr = ex.explain(predictors["tfidf"], NASA, target="rec.sport.hockey")
    assert attr.target_label == "rec.sport.hockey"
    assert attr.top_words(10, -1), "some words must speak against hockey"
    against = {w for w, _ in attr.top_words(10, -1)}
    assert against & {"nasa", "space", "shuttle", "launch", "orbit", "satellite", "moon", "mission"}
    for_other = ex.explain(predictors["tfidf"], NASA, target="sci.space")
    assert {w for w, _ in for_other.top_words(5, 1)} != {w for w, _ in attr.top_words(5, 1)}


def test_tfidf_bigram_split_equally_and_repeats_shared():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from newsclf.models.tfidf import TfidfClassifier

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english", dtype=np.float32)
    vec.fit(["alpha beta gamma", "beta gamma delta", "alpha delta"])
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(2, len(vec.vocabulary_))).astype(np.float32)
    model = TfidfClassifier(vec, coef, np.array([0.5, -0.5], dtype=np.float32))
    p = Predictor(Path("tfidf-unit"), "tfidf", ["a", "b"], {}, model)
    text = "Alpha beta, the alpha."
    attr = ex.explain(p, text, target=1)
    names, contribs, _ = model.contributions(text, 1, versus=0)  # two classes: 1 is contrasted with 0
    c = dict(zip(names, contribs))
    # "alpha" occurs twice (each gets half of its unigram); "alpha beta" is split over alpha (1st) and beta
    assert attr.scores[0] == pytest.approx(c["alpha"] / 2 + c["alpha beta"] / 2, rel=1e-5)
    assert attr.scores[1] == pytest.approx(c["beta"] + c["alpha beta"] / 2, rel=1e-5)
    assert attr.scores[3] == pytest.approx(c["alpha"] / 2, rel=1e-5)
    assert attr.scores[2] == 0.0  # "the": stop word
    decision = model.decision_function([text])[0]
    assert word_total(attr) + attr.f_baseline == pytest.approx(decision[1] - decision[0], rel=1e-5)


# ---- BiLSTM ----------------------------------------------------------------------------------
def test_bilstm_ig_completeness(sharp_bilstm):
    attr = ex.explain(sharp_bilstm, MIXED, "ig", target="comp.graphics", n_steps=64)
    gap = attr.f_input - attr.f_baseline
    assert abs(gap) > 0.05, "the test needs a model whose output moves"
    assert abs(attr.delta) < 0.01 * abs(gap) + 1e-4
    assert attr.unaligned == 0.0  # every BiLSTM token is a word
    assert word_total(attr) == pytest.approx(gap + attr.delta, rel=1e-4, abs=1e-5)
    assert attr.target_label == "comp.graphics" and attr.n_steps == 64
    assert attr.words == [w for w, _, _ in word_spans(MIXED)]


def test_bilstm_attention_sums_to_one_and_is_zero_on_padding(predictors):
    import torch

    p = predictors["bilstm"]
    attr = ex.explain(p, MIXED, "attention")
    assert not attr.signed and min(s for s in attr.scores) >= 0
    assert word_total(attr) == pytest.approx(1.0, abs=1e-5)
    ids = p.encoder.encode([MIXED, "graphics render"])
    batch, mask = pad_batch(ids, 0)
    with torch.no_grad():
        weights = p.model(torch.from_numpy(batch), torch.from_numpy(mask)).attentions[0]  # (B, T)
    assert weights.sum(1).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert torch.all(weights[torch.from_numpy(mask) == 0] == 0)


def test_bilstm_truncated_text_marks_unseen_words(predictors):
    p = predictors["bilstm"]
    text = " ".join(["graphics", "hockey"] * p.encoder.max_len)  # twice the limit
    attr = ex.explain(p, text, "attention")
    n = p.encoder.max_len
    assert attr.seen == [True] * n + [False] * n
    assert all(s is None for s in attr.scores[n:]) and attr.unseen_spans == [(attr.offsets[n][0], len(text))]
    assert "never seen" in " ".join(attr.notes)
    json.dumps(attr.to_dict())  # None -> null, tuples -> lists


def test_cudnn_is_disabled_for_lstms_on_cuda(monkeypatch, sharp_bilstm, sharp_distilbert):
    import torch

    from newsclf import ig

    calls = []

    def spy_flags(**kwargs):
        calls.append(kwargs)
        return nullcontext()

    monkeypatch.setattr(torch.backends.cudnn, "flags", spy_flags)
    monkeypatch.setattr(ig, "_on_cuda", lambda model: True)
    ex.explain(sharp_bilstm, GRAPHICS, "ig", n_steps=4)
    assert calls == [{"enabled": False}]
    ex.explain(sharp_distilbert, GRAPHICS, "ig", n_steps=4)  # no RNN inside: cuDNN untouched
    assert len(calls) == 1
    monkeypatch.setattr(ig, "_on_cuda", lambda model: False)
    ex.explain(sharp_bilstm, GRAPHICS, "ig", n_steps=4)
    assert len(calls) == 1


# ---- transformers ----------------------------------------------------------------------------
def test_transformer_ig_completeness_and_baseline(sharp_distilbert):
    attr = ex.explain(sharp_distilbert, MIXED, "ig", target=1, n_steps=100)
    gap = attr.f_input - attr.f_baseline
    assert abs(gap) > 0.05
    assert abs(attr.delta) < 0.01 * abs(gap) + 1e-4
    assert word_total(attr) + attr.unaligned == pytest.approx(gap + attr.delta, rel=1e-4, abs=1e-5)
    ids, spans, _ = transformer_tokens(sharp_distilbert.encoder, MIXED)
    tok = sharp_distilbert.encoder.tokenizer
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id and spans[0] == spans[-1] == (0, 0)
    assert ids == sharp_distilbert.encoder.encode([MIXED])[0]  # same ids as prediction sees


def test_word_alignment_sums_subwords(sharp_distilbert):
    text = "rendering pixels, ok"
    ids, spans, _ = transformer_tokens(sharp_distilbert.encoder, text)
    pieces = sharp_distilbert.encoder.tokenizer.convert_ids_to_tokens(ids)
    assert pieces[1:3] == ["render", "##ing"] and pieces[3:5] == ["pixel", "##s"]  # several sub-words per word
    token_scores = np.arange(1.0, len(ids) + 1)
    scores, hit, unaligned = ex.align_to_words(word_spans(text), spans, token_scores)
    assert scores[0] == token_scores[1] + token_scores[2] and scores[1] == token_scores[3] + token_scores[4]
    assert hit.all()
    assert unaligned == token_scores[0] + token_scores[5] + token_scores[-1]  # [CLS] "," [SEP]
    # a token across two words is split by characters; a word of the splitter spans tokens
    words = word_spans("abc123 x")  # abc | 123 | x
    scores, _, _ = ex.align_to_words(words, [(0, 6), (7, 8)], [6.0, 1.0])
    assert scores.tolist() == [3.0, 3.0, 1.0]
    attr = ex.explain(sharp_distilbert, text, "ig", n_steps=8)
    assert attr.words == ["rendering", "pixels", "ok"]


def test_transformer_attentions_eager_every_layer_and_shared_model_untouched(sharp_distilbert):
    import torch

    model = sharp_distilbert.model
    clone, _ = ex.private_copy(model, "eager")
    assert clone.get_input_embeddings().weight is model.get_input_embeddings().weight  # weights shared
    assert model.config._attn_implementation == "sdpa" and clone.config._attn_implementation == "eager"
    ids = torch.tensor([transformer_tokens(sharp_distilbert.encoder, GRAPHICS)[0]])
    with torch.no_grad():
        out = clone(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    assert len(out.attentions) == model.config.n_layers == 2
    for layer in (0, 1):
        for head in (None, 0, 1):
            attr = ex.explain(sharp_distilbert, GRAPHICS, "attention", layer=layer, head=head)
            assert (attr.layer, attr.head) == (layer, head)
            assert word_total(attr) + attr.unaligned == pytest.approx(1.0, abs=1e-5)  # the [CLS] row
    roll = ex.explain(sharp_distilbert, GRAPHICS, "rollout")
    assert word_total(roll) + roll.unaligned == pytest.approx(1.0, abs=1e-5) and roll.layer is None
    with pytest.raises(InputError, match="layer"):
        ex.explain(sharp_distilbert, GRAPHICS, "attention", layer=5)
    with pytest.raises(InputError, match="head"):
        ex.explain(sharp_distilbert, GRAPHICS, "attention", head=2)


@pytest.mark.parametrize("truncation", ["head", "head_tail"])
def test_transformer_truncation_marks_unseen(sharp_distilbert, truncation):
    encoder = copy.copy(sharp_distilbert.encoder)
    encoder.max_len, encoder.truncation = 18, truncation  # 16 body tokens: head 4 + tail 12
    p = dataclasses.replace(sharp_distilbert, encoder=encoder)
    text = ("graphics hockey " * 20).strip()  # 40 one-token words
    attr = ex.explain(p, text, "attention")
    assert attr.n_tokens == 18
    seen = attr.seen
    if truncation == "head":
        assert seen == [True] * 16 + [False] * 24 and attr.unseen_spans[0][1] == len(text)
        assert transformer_tokens(encoder, text)[0] == encoder.encode([text])[0]
    else:
        assert seen == [True] * 4 + [False] * 24 + [True] * 12 and len(attr.unseen_spans) == 1
    assert all((s is None) == (not ok) for s, ok in zip(attr.scores, seen))


# ---- inputs ----------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(predictors):
    p = predictors["bilstm"]
    for text in ("", "   ", "!!! ... ???"):
        with pytest.raises(InputError, match="text"):
            ex.explain(p, text)
    with pytest.raises(InputError, match="not a class"):
        ex.explain(p, GRAPHICS, target="no.such.group")
    with pytest.raises(InputError, match="out of range"):
        ex.explain(p, GRAPHICS, target=20)
    with pytest.raises(InputError, match="rollout"):
        ex.explain(p, GRAPHICS, method="rollout")
    assert ex.resolve_target("REC.AUTOS", p.label_names) == p.label_names.index("rec.autos")
    assert ex.resolve_target("7", p.label_names) == 7 and ex.resolve_target(None, p.label_names) is None


# ---- CLI -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["tfidf", "bilstm", "transformer"])
def test_explain_cli_each_kind(tiny_runs, capsys, kind):
    from newsclf.cli import main

    run = tiny_runs[kind].name
    base = ["explain", run, "--text", MIXED, "--runs-dir", str(tiny_runs["runs_dir"]), "--steps", "4"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert run in out and ("against" in out)
    assert main(base + ["--json", "--target", "sci.space"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["target_label"] == "sci.space" and rec["words"][0] == "The" and len(rec["scores"]) == len(rec["words"])
    if kind == "tfidf":
        assert main(base + ["--method", "attention"]) == 2
        assert "offers: contributions" in capsys.readouterr().err
    else:
        assert main(base + ["--method", "attention"]) == 0
        assert "most attended" in capsys.readouterr().out
    assert main(base + ["--target", "nope"]) == 2
    assert "error: run" in capsys.readouterr().err


def test_explain_cli_uses_one_number_format_per_table(tiny_runs, capsys):
    import re

    from newsclf.cli import main

    run = tiny_runs["tfidf"].name
    assert main(["explain", run, "--text", NASA, "--target", "rec.sport.hockey",
                 "--runs-dir", str(tiny_runs["runs_dir"])]) == 0
    out = capsys.readouterr().out
    assert "score difference" in out and "bias difference" in out and "note: contrastive" in out
    rows = out.split("against", 1)[1]
    decimals = {len(m) for m in re.findall(r"[+-]\d+\.(\d+)", rows)}
    assert len(decimals) == 1, out  # no "+0.01234" beside "+1.2e-05"
    assert "e-0" not in rows


def test_an_incomplete_integrated_gradients_gets_a_plain_note():
    from newsclf.explain import completeness_note

    note = completeness_note(2.0, 8.9, -3.8, 32)  # the scores sum to 10.7 of a 12.7 change
    assert note.startswith("incomplete: the scores miss 16% of the change") and "32 steps" in note
    assert completeness_note(1e-4, 8.9, -3.8, 32) is None  # complete within 5 %
    assert completeness_note(-0.6, 8.9, -3.8, 32) is None  # 4.7 %
    assert "f(text) = f(baseline)" in completeness_note(0.5, 1.0, 1.0, 16)
    assert completeness_note(float("nan"), 1.0, 0.0, 8) is None


def test_the_note_reaches_the_explanation_and_a_complete_one_has_none(predictors, monkeypatch):
    from newsclf import explain as ex_mod

    complete = ex.explain(predictors["bilstm"], MIXED, "ig", n_steps=32)
    assert not any(n.startswith("incomplete") for n in complete.notes)
    real = ex_mod.integrated_gradients

    def off_by_half(*args, **kwargs):  # an LSTM whose output jumps along the path: scores miss half the change
        scores, delta, probs, f_in, f_base, target = real(*args, **kwargs)
        return scores, (f_in - f_base) / 2, probs, f_in, f_base, target

    monkeypatch.setattr(ex_mod, "integrated_gradients", off_by_half)
    incomplete = ex.explain(predictors["bilstm"], MIXED, "ig", n_steps=32)
    assert any(n.startswith("incomplete: the scores miss 50%") for n in incomplete.notes)
