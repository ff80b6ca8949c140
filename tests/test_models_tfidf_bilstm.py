"""The classic models: masked CPU BiLSTM == packed nn.LSTM, BiLSTM attention, GloVe, TF-IDF save/load,
the training loop's events, best-epoch keeping and a STOP request."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from newsclf import store
from newsclf.config import PRESETS, RunConfig
from newsclf.models import bilstm, tfidf
from newsclf.models.lstm_cpu import masked_bilstm, packed_bilstm, reverse_index
from newsclf.text import PAD_ID, UNK_ID, Vocab, WordEncoder

LABELS = [f"class{i}" for i in range(20)]


# ---- masked CPU BiLSTM --------------------------------------------------------------------------
def _packed(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]


def test_reverse_index_reverses_each_row_within_its_length():
    idx = reverse_index(torch.tensor([3, 0, 5]), 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]


@pytest.mark.parametrize("num_layers", [1, 2])
def test_masked_bilstm_equals_packed_lstm_values_and_input_gradients(num_layers: int):
    torch.manual_seed(0)
    lstm = nn.LSTM(6, 5, num_layers=num_layers, batch_first=True, bidirectional=True).double()
    lengths = torch.tensor([7, 3, 1, 5, 7, 2])
    B, T = len(lengths), 9  # T > max length: trailing padding for every row
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long()
    x = torch.randn(B, T, 6, dtype=torch.float64) * mask.unsqueeze(-1)
    x_ref = x.clone().requires_grad_(True)
    x_new = x.clone().requires_grad_(True)

    ref = _packed(lstm, x_ref, lengths)
    new = masked_bilstm(lstm, x_new, mask, dropout=0.0, training=False)
    assert new.shape == (B, T, 10)
    torch.testing.assert_close(new, ref, atol=1e-10, rtol=1e-10)
    assert (new[mask == 0] == 0).all()

    upstream = torch.randn_like(ref)
    (ref * upstream).sum().backward()
    (new * upstream).sum().backward()
    torch.testing.assert_close(x_new.grad, x_ref.grad, atol=1e-10, rtol=1e-10)
    weight_grad_new = lstm.weight_hh_l0_reverse.grad.clone()
    lstm.zero_grad()
    (_packed(lstm, x.clone(), lengths) * upstream).sum().backward()
    torch.testing.assert_close(weight_grad_new / 2, lstm.weight_hh_l0_reverse.grad)  # both passes accumulated


@pytest.mark.parametrize("num_layers", [1, 2])
def test_the_cuda_path_packed_bilstm_equals_the_masked_one(num_layers: int):
    """The path the BiLSTM takes on CUDA (sorted on the host, packed, nn.LSTM), run here on CPU."""
    torch.manual_seed(1)
    lstm = nn.LSTM(6, 5, num_layers=num_layers, batch_first=True, bidirectional=True).double()
    lengths = torch.tensor([3, 7, 1, 7, 0, 5, 2])  # unsorted, ties, an empty row
    B, T = len(lengths), 8
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).long()
    x = torch.randn(B, T, 6, dtype=torch.float64) * mask.unsqueeze(-1)
    x_packed, x_masked = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    packed = packed_bilstm(lstm, x_packed, lengths.numpy())
    masked = masked_bilstm(lstm, x_masked, mask, dropout=0.0, training=False)
    torch.testing.assert_close(packed, masked, atol=1e-10, rtol=1e-10)
    upstream = torch.randn_like(packed)
    (packed * upstream).sum().backward()
    (masked * upstream).sum().backward()
    torch.testing.assert_close(x_packed.grad, x_masked.grad, atol=1e-10, rtol=1e-10)


def test_masked_bilstm_ignores_what_is_in_the_padding():
    torch.manual_seed(1)
    lstm = nn.LSTM(4, 3, num_layers=2, batch_first=True, bidirectional=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    x = torch.randn(2, 5, 4)
    noisy = x.clone()
    noisy[0, 3:] = 100.0
    a = masked_bilstm(lstm, x, mask, 0.0, False)
    b = masked_bilstm(lstm, noisy, mask, 0.0, False)
    torch.testing.assert_close(a, b)


# ---- BiLSTM with attention --------------------------------------------------------------------
def _tiny_model(vocab_size: int = 40, **kw) -> bilstm.BiLSTMAttention:
    arch = bilstm.BiLSTMArch(vocab_size=vocab_size, num_labels=20, embed_dim=12, hidden_size=8, **kw)
    torch.manual_seed(0)
    idf = torch.rand(vocab_size) + 0.5
    idf[PAD_ID] = 0
    return bilstm.BiLSTMAttention(arch, idf).eval()


def test_attention_sums_to_one_over_real_tokens_and_is_zero_on_padding():
    model = _tiny_model()
    ids = torch.tensor([[5, 6, 7, 8, 0, 0, 0, 0], [9, 10, 11, 12, 13, 14, 15, 16], [3, 0, 0, 0, 0, 0, 0, 0]])
    mask = (ids != PAD_ID).long()
    out = model(input_ids=ids, attention_mask=mask)
    assert out.logits.shape == (3, 20)
    (att,) = out.attentions
    assert att.shape == (3, 8)
    torch.testing.assert_close(att.sum(1), torch.ones(3))
    assert (att[mask == 0] == 0).all()
    assert (att[mask == 1] > 0).all()


def test_padding_length_does_not_change_the_prediction():
    model = _tiny_model()
    short = torch.tensor([[5, 6, 7, 2]])
    long = torch.tensor([[5, 6, 7, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    a = model(input_ids=short, attention_mask=(short != 0).long()).logits
    b = model(input_ids=long, attention_mask=(long != 0).long()).logits
    torch.testing.assert_close(a, b)


def test_an_empty_document_does_not_crash():
    model = _tiny_model()
    ids = torch.zeros(2, 8, dtype=torch.long)
    ids[1, :3] = torch.tensor([4, 5, 6])
    mask = (ids != 0).long()
    out = model(input_ids=ids, attention_mask=mask)
    assert torch.isfinite(out.logits).all()
    assert torch.isfinite(out.attentions[0]).all()
    # and through the whole pipeline: a text without any word encodes to an empty sequence
    from newsclf.predict import torch_predict_proba

    enc = WordEncoder(Vocab.build(["alpha beta gamma", "beta delta"], 40), max_len=16)
    probs = torch_predict_proba(model, enc.encode(["!!! ???", "", "alpha beta"]), enc.pad_id, "cpu")
    assert probs.shape == (3, 20) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    model.train()
    loss = model(input_ids=ids, attention_mask=mask).logits.sum()
    loss.backward()  # the backward pass survives an empty row too
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_tfidf_weighting_has_mean_one_and_favours_rare_repeated_tokens():
    idf = torch.tensor([0.0, 3.0, 1.0, 5.0])
    weigher = bilstm.TfidfWeighting(idf)
    ids = torch.tensor([[2, 2, 3, 1, 0, 0]])
    mask = (ids != 0).long()
    w = weigher(ids, mask)
    torch.testing.assert_close(w[0, :4].mean(), torch.tensor(1.0))
    assert (w[0, 4:] == 0).all()
    assert w[0, 2] > w[0, 1]  # idf 5 once beats idf 1 twice
    assert w[0, 0] == w[0, 1]


STUDY = PRESETS["BiLSTM + attention (study)"]


def test_build_uses_the_study_architecture_and_the_training_vocabulary():
    cfg = RunConfig(**{**STUDY, "vocab_size": 6}).resolved()
    model, enc = bilstm.build(cfg, ["a b c d e f g h", "a b c"], LABELS)
    assert len(enc.vocab) == 6 and enc.max_len == 256
    assert model.embedding.num_embeddings == 6 and model.embedding.embedding_dim == 300
    assert model.embedding.padding_idx == PAD_ID
    lstm = model.lstm
    assert (lstm.hidden_size, lstm.num_layers, lstm.bidirectional, lstm.dropout) == (128, 2, True, 0.3)
    assert (model.attention.in_features, model.attention.out_features) == (256, 1)
    assert (model.classifier.in_features, model.classifier.out_features) == (256, 20)
    assert model.dropout.p == 0.3 and model.embed_dropout.p == 0.3
    assert model.arch.embeddings == "random" and model.arch.pooling == "attention"


def test_the_default_is_the_study_network_with_early_stopping_and_the_options_work():
    cfg = RunConfig(model="bilstm").resolved()
    assert (cfg.patience, cfg.pooling, cfg.word_dropout, cfg.label_smoothing, cfg.min_freq) == (2, "attention", 0.0, 0.0, 1)
    model, _ = bilstm.build(cfg, ["a b c d", "a b c", "a e"], LABELS)
    assert model.classifier.in_features == 256 and model.embed_dropout.p == cfg.dropout == 0.3
    cfg = RunConfig(model="bilstm", min_freq=2, pooling="attention+max", embed_dropout=0.4, word_dropout=0.1).resolved()
    model, enc = bilstm.build(cfg, ["a b c d", "a b c", "a e"], LABELS)
    assert enc.vocab.itos[2:] == ["a", "b", "c"]  # min_freq 2: d and e are out
    assert (model.classifier.in_features, model.embed_dropout.p, model.arch.word_dropout) == (512, 0.4, 0.1)
    ids = torch.tensor([[2, 3, 4, 0], [2, 0, 0, 0]])
    out = model.eval()(input_ids=ids, attention_mask=(ids != 0).long())
    assert out.logits.shape == (2, 20) and torch.isfinite(out.logits).all()
    torch.manual_seed(0)  # word dropout zeroes whole token vectors in training only
    assert torch.isfinite(model.train()(input_ids=ids, attention_mask=(ids != 0).long()).logits).all()


def test_bilstm_save_load_round_trip(tmp_path: Path):
    cfg = RunConfig(model="bilstm", embed_dim=8, hidden_size=4, max_len=16).resolved()
    model, enc = bilstm.build(cfg, ["alpha beta gamma delta", "beta gamma epsilon"], LABELS)
    model.eval()
    bilstm.save(model, enc, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bilstm_config.json", "model.safetensors", "vocab.json"]
    back, enc2 = bilstm.load(tmp_path)
    ids = torch.tensor(enc.encode(["alpha gamma zeta beta"]))
    torch.testing.assert_close(back(input_ids=ids).logits, model(input_ids=ids).logits)
    assert enc2.encode(["alpha zeta"]) == enc.encode(["alpha zeta"])


# ---- GloVe ------------------------------------------------------------------------------------
def _glove_lines(dim: int) -> tuple[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    vectors = {w: rng.standard_normal(dim).astype(np.float32) for w in ("puck", "goalie", "orbit", "absentword")}
    text = "".join(f"{w} {' '.join(f'{v:.6f}' for v in vec)}\n" for w, vec in vectors.items())
    text += "broken 1.0 2.0\n"  # a malformed line is skipped
    return text, {w: np.asarray([float(f"{v:.6f}") for v in vec], dtype=np.float32) for w, vec in vectors.items()}


@pytest.mark.parametrize("kind", ["txt", "zip"])
def test_glove_rows_are_copied_from_txt_and_zip(tmp_path: Path, kind: str):
    text, vectors = _glove_lines(300)
    if kind == "txt":
        path = tmp_path / "glove.6B.300d.txt"
        path.write_text(text, encoding="utf-8")
    else:
        path = tmp_path / "glove.6B.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("glove.6B.50d.txt", "puck " + " ".join(["9.0"] * 50) + "\n")  # a decoy of another size
            zf.writestr("glove.6B.300d.txt", text)
    cfg = RunConfig(model="bilstm", glove=str(path), hidden_size=4, min_freq=1).resolved()
    model, enc = bilstm.build(cfg, ["the puck and the goalie", "orbit shuttle"], LABELS)
    assert model.arch.embeddings == path.name
    weight = model.embedding.weight.detach().numpy()
    for word in ("puck", "goalie", "orbit"):
        np.testing.assert_array_equal(weight[enc.vocab.stoi[word]], vectors[word])
    assert not np.allclose(weight[enc.vocab.stoi["shuttle"]], 0)  # random init kept for words GloVe lacks
    assert (weight[PAD_ID] == 0).all()
    bilstm.save(model, enc, tmp_path / "best")
    arch = json.loads((tmp_path / "best" / bilstm.ARCH).read_text())
    assert arch["embeddings"] == path.name and arch["embeddings_info"]["vocab_coverage"] == round(3 / 6, 4)


def test_glove_without_any_vocabulary_word_is_an_error(tmp_path: Path):
    path = tmp_path / "g.txt"
    path.write_text("zzz " + " ".join(["0.5"] * 300) + "\n")
    cfg = RunConfig(model="bilstm", glove=str(path), hidden_size=4).resolved()
    with pytest.raises(ValueError, match="no word of the vocabulary"):
        bilstm.build(cfg, ["puck goalie"], LABELS)


def test_a_glove_run_records_it(tmp_path: Path, fixture_data_home: Path):
    from tests.helpers.runs import train_tiny_run

    text, _ = _glove_lines(300)
    glove = tmp_path / "glove.6B.300d.txt"
    glove.write_text(text)
    run = train_tiny_run(tmp_path / "runs", fixture_data_home, model="bilstm", name="glove", glove=str(glove),
                         embed_dim=300, epochs=1, limit_train=40)
    config = json.loads((run / store.CONFIG).read_text())
    assert (config["embeddings"], config["glove"]) == (str(glove.resolve()), "")  # the alias maps onto it
    assert json.loads((run / store.BEST / bilstm.ARCH).read_text())["embeddings"] == glove.name
    info = json.loads((run / store.RESULTS).read_text())["embeddings"]
    assert info["source"] == glove.name and info["dim"] == 300 and 0 < info["token_coverage"] < 1
    assert store.read_status(run)["state"] == "finished"


# ---- TF-IDF -------------------------------------------------------------------------------------
def _pickle_like(path: Path) -> bool:
    head = path.read_bytes()[:2]
    return path.suffix in (".pkl", ".pickle", ".pt", ".pth", ".bin", ".joblib") or (
        len(head) == 2 and head[0] == 0x80 and head[1] <= 5)  # pickle protocol 2-5 opcode


def test_tfidf_save_load_gives_identical_probabilities(tmp_path: Path):
    from tests.helpers.corpus import CLASS_WORDS

    rng = np.random.default_rng(0)
    names = list(CLASS_WORDS)[:4]
    texts, labels = [], []
    for label, name in enumerate(names):
        for _ in range(6):
            texts.append(" ".join(rng.choice(CLASS_WORDS[name], 8)) + " común naïve")
            labels.append(label)
    cfg = RunConfig(model="tfidf").resolved()
    model = tfidf.fit(cfg, texts, np.array(labels), 5, texts[::3], np.array(labels[::3]))  # class 4 absent
    tfidf.save(model, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tfidf.json", "tfidf.safetensors"]
    assert not any(_pickle_like(p) for p in tmp_path.iterdir())
    back = tfidf.load(tmp_path)
    probe = ["puck goalie nope", "graphics image", "", "Naive comun atheism"] + texts[:5]
    np.testing.assert_array_equal(back.predict_proba(probe), model.predict_proba(probe))
    np.testing.assert_allclose(model.predict_proba(probe).sum(1), 1.0, rtol=1e-5)
    assert (model.predict_proba(texts).argmax(1) == np.array(labels)).mean() > 0.9
    assert (model.predict_proba(texts)[:, 4] < 1e-6).all()  # a class never seen is never predicted
    assert back.params == model.params == model.coef.size + model.intercept.size


def test_tfidf_logreg_gives_probabilities(tmp_path: Path):
    texts = ["puck goalie hockey", "orbit nasa space", "puck hockey rink", "nasa shuttle orbit"] * 3
    labels = np.array([0, 1, 0, 1] * 3)
    cfg = RunConfig(model="tfidf", classifier="logreg", alpha=0.1).resolved()
    model = tfidf.fit(cfg, texts, labels, 2)
    probs = model.predict_proba(["hockey puck", "space orbit"])
    assert probs.argmax(1).tolist() == [0, 1]
    tfidf.save(model, tmp_path)
    np.testing.assert_array_equal(tfidf.load(tmp_path).predict_proba(["hockey puck"]), probs[:1])


@pytest.mark.parametrize("kind", ["tfidf", "bilstm"])
def test_no_pickle_anywhere_in_a_finished_run(tiny_runs: dict, kind: str):
    files = [p for p in tiny_runs[kind].rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    offenders = [str(p) for p in files if _pickle_like(p)]
    assert offenders == []
    for npz in tiny_runs[kind].glob("*.npz"):
        with np.load(npz, allow_pickle=False) as data:
            assert all(data[k].dtype != object for k in data.files)


# ---- the training loop: events, best epoch, STOP ------------------------------------------------
def test_metrics_have_step_and_epoch_events_and_best_epoch_is_the_best_val_acc(tiny_runs: dict):
    run = tiny_runs["bilstm"]
    events, _ = store.read_metrics(run / store.METRICS)
    steps = [e for e in events if e["type"] == "step"]
    epochs = [e for e in events if e["type"] == "epoch"]
    assert events[0]["type"] == "start" and events[-1]["type"] == "done"
    assert len(epochs) == 2 and len(steps) == events[0]["total_steps"]
    for e in steps:
        assert {"loss", "lr", "samples_per_s", "eta_s", "step", "total_steps", "epoch"} <= set(e)
        assert np.isfinite(e["loss"]) and e["lr"] >= 0 and e["samples_per_s"] > 0 and e["eta_s"] >= 0
    config = json.loads((run / store.CONFIG).read_text())
    assert 0 < max(e["lr"] for e in steps) <= config["lr"]  # warm-up then linear decay
    assert steps[-1]["eta_s"] == 0
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    results = json.loads((run / store.RESULTS).read_text())
    accs = [e["val_acc"] for e in epochs]
    assert results["best_epoch"] == int(np.argmax(accs)) + 1
    assert results["val_acc"] == pytest.approx(max(accs), abs=1e-9)  # best/ is the kept epoch


def test_the_best_epoch_is_kept_not_the_last(tmp_path: Path, fixture_data_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Scripted val accuracies 0.2, 0.6, 0.4: best/ is saved after epochs 1 and 2 only, last/ after every one."""
    from tests.helpers.runs import train_tiny_run
    from safetensors.numpy import load_file

    from newsclf.train import Trainer

    scripted = iter([0.2, 0.6, 0.4])
    real_evaluate = Trainer.evaluate

    def fake_evaluate(self):
        loss, _ = real_evaluate(self)
        return loss, next(scripted)

    saves = []
    real_save = bilstm.save

    def spy_save(model, encoder, directory):
        saves.append(Path(directory).name)
        real_save(model, encoder, directory)

    monkeypatch.setattr(Trainer, "evaluate", fake_evaluate)
    monkeypatch.setattr(bilstm, "save", spy_save)
    run = train_tiny_run(tmp_path, fixture_data_home, model="bilstm", name="best", epochs=3, limit_train=48)
    assert saves == ["best.tmp", "best.tmp"]
    results = json.loads((run / store.RESULTS).read_text())
    assert results["best_epoch"] == 2
    state = json.loads((run / store.LAST / "state.json").read_text())
    assert state["train_state"]["epoch"] == 3
    best = load_file(str(run / store.BEST / "model.safetensors"))
    last = load_file(str(run / store.LAST / "model.safetensors"))
    assert not np.array_equal(best["classifier.weight"], last["classifier.weight"])


def test_a_stop_request_ends_the_run_cancelled(tmp_path: Path, fixture_data_home: Path):
    from newsclf.runner import run

    cfg = RunConfig(model="bilstm", data_home=str(fixture_data_home), epochs=3, batch_size=16, embed_dim=8,
                    hidden_size=4, max_len=32).resolved()
    run_dir = store.create_run_dir(tmp_path, "stop")
    seen = []

    def on_event(event):
        seen.append(event["type"])
        if event["type"] == "step" and event["step"] == 2:
            store.request_stop(run_dir)

    assert run(cfg, run_dir, on_event=on_event) is None
    status = store.read_status(run_dir)
    assert status["state"] == "cancelled" and status["reason"]
    assert seen.count("step") == 2 and "epoch" not in seen
    assert not (run_dir / store.RESULTS).exists()


def test_early_stopping_ends_after_patience_epochs_without_a_better_val_acc(tmp_path: Path, fixture_data_home: Path,
                                                                          monkeypatch: pytest.MonkeyPatch):
    """Scripted val accuracies 0.3, 0.5, 0.5, 0.4, 0.9 with patience 2: stops after epoch 4, keeps epoch 2."""
    from tests.helpers.runs import train_tiny_run

    from newsclf.train import Trainer

    scripted = iter([0.3, 0.5, 0.5, 0.4, 0.9])
    real_evaluate = Trainer.evaluate
    monkeypatch.setattr(Trainer, "evaluate", lambda self: (real_evaluate(self)[0], next(scripted)))
    run = train_tiny_run(tmp_path, fixture_data_home, model="bilstm", name="patience", epochs=5, patience=2,
                         limit_train=40)
    epochs = [e for e in store.read_metrics(run / store.METRICS)[0] if e.get("type") == "epoch"]
    assert [e["early_stop"] for e in epochs] == [False, False, False, True]
    assert json.loads((run / store.RESULTS).read_text())["best_epoch"] == 2
    assert store.read_status(run)["state"] == "finished"


def test_label_smoothing_reaches_the_loss(monkeypatch: pytest.MonkeyPatch):
    import torch.nn.functional as F

    from newsclf.train import Trainer

    seen = {}
    real = F.cross_entropy

    def spy(*args, **kwargs):
        seen["label_smoothing"] = kwargs.get("label_smoothing")
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "cross_entropy", spy)
    trainer = Trainer.__new__(Trainer)
    trainer.device, trainer.use_cuda, trainer.loss_weight = torch.device("cpu"), False, None
    trainer.loader = type("Batches", (), {"last_lengths": None})()  # the device-side batcher's host lengths
    trainer.cfg = RunConfig(model="bilstm", label_smoothing=0.2).resolved()
    trainer.ddp_model = lambda input_ids, attention_mask: type("O", (), {"logits": torch.zeros(2, 3)})()
    batch = {"input_ids": torch.ones(2, 4, dtype=torch.long), "attention_mask": torch.ones(2, 4, dtype=torch.long),
             "labels": torch.tensor([0, 1])}
    trainer._loss(batch)
    assert seen["label_smoothing"] == 0.2
