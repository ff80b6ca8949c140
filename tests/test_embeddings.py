"""Pretrained embeddings for the BiLSTM: every file format, coverage, the config field and its alias,
preflight, a mocked hub download and the one-line offline error, and the sub-word BiLSTM over a local
Hugging Face model (trains, saves, loads, predicts, explains on the fixture corpus)."""
from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from newsclf import embeddings as emb
from newsclf import store
from newsclf.config import PRESETS, ConfigError, RunConfig
from newsclf.models import bilstm, get_family
from newsclf.text import PAD_ID, SubwordEncoder

LABELS = [f"class{i}" for i in range(20)]
TEXTS = ["the puck and the goalie", "orbit shuttle orbit", "puck puck zamboni"]
DIM = 6


def _vectors(dim: int = DIM) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {w: np.round(rng.standard_normal(dim), 5).astype(np.float32) for w in ("puck", "goalie", "orbit", "Moon")}


def _lines(vectors: dict[str, np.ndarray]) -> str:
    return "".join(f"{w} {' '.join(f'{x:.5f}' for x in v)}\n" for w, v in vectors.items())


def _write(tmp_path: Path, kind: str, vectors: dict[str, np.ndarray]) -> Path:
    text, header = _lines(vectors), f"{len(vectors)} {DIM}\n"
    if kind == "txt":
        path = tmp_path / "vectors.txt"
        path.write_text(text)
    elif kind == "zip":
        path = tmp_path / "glove.6B.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("glove.6B.50d.txt", "puck " + " ".join(["9.0"] * 50) + "\n")  # another size: not picked
            zf.writestr(f"glove.6B.{DIM}d.txt", text)
    elif kind == "vec-header":
        path = tmp_path / "wiki.vec"
        path.write_text(header + text)
    elif kind == "vec":
        path = tmp_path / "plain.vec"
        path.write_text(text)
    elif kind == "txt.gz":
        path = tmp_path / "vectors.txt.gz"
        path.write_bytes(gzip.compress(text.encode()))
    else:  # vec.gz with a header
        path = tmp_path / "cc.en.vec.gz"
        path.write_bytes(gzip.compress((header + text).encode()))
    return path


@pytest.mark.parametrize("kind", ["txt", "zip", "vec-header", "vec", "txt.gz", "vec.gz"])
def test_every_format_loads_its_vectors_and_reports_coverage(tmp_path: Path, kind: str):
    vectors = _vectors()
    path = _write(tmp_path, kind, vectors)
    # a zip holding several sizes: embed_dim picks the member (empty picks the 300d one, else the first)
    size = {"embed_dim": DIM} if kind == "zip" else {}
    cfg = RunConfig(model="bilstm", embeddings=str(path), hidden_size=4, min_freq=2, **size).resolved()
    assert cfg.embed_dim == DIM and cfg.embeddings == str(path.resolve())
    get_family("bilstm").preflight(cfg)
    model, enc = bilstm.build(cfg, TEXTS, LABELS)
    weight = model.embedding.weight.detach().numpy()
    for word in ("puck", "orbit"):
        np.testing.assert_array_equal(weight[enc.vocab.stoi[word]], vectors[word])
    assert (weight[PAD_ID] == 0).all() and "goalie" not in enc.vocab.stoi  # seen once: below min_freq 2
    info = model.arch.embeddings_info
    # min_freq 2: vocabulary = puck, orbit, the; 11 tokens, of which puck 3 + orbit 2 have vectors
    assert enc.vocab.itos[2:] == ["puck", "orbit", "the"]
    assert info["dim"] == DIM and info["vocab_coverage"] == round(2 / 3, 4)
    assert info["token_coverage"] == round(5 / 11, 4)


def test_coverage_counts_vocabulary_entries_and_training_tokens():
    cov = emb.coverage("x", 3, ["a", "b", "c", "d"], {"a", "c"}, {"a": 5, "b": 1, "c": 2, "d": 2, "zz": 10})
    assert cov.vocab_coverage == 0.5 and cov.token_coverage == pytest.approx(7 / 20)


def test_vectors_of_the_wrong_size_and_unreadable_files_are_refused(tmp_path: Path):
    path = _write(tmp_path, "txt", _vectors())
    with pytest.raises(ConfigError) as err:
        RunConfig(model="bilstm", embeddings=str(path), embed_dim=300).resolved()
    assert err.value.field == "embed_dim" and "6" in str(err.value) and "\n" not in str(err.value)
    junk = tmp_path / "junk.vec"
    junk.write_text("hello world\n")
    with pytest.raises(ConfigError, match="embeddings: .*no word vectors"):
        RunConfig(model="bilstm", embeddings=str(junk)).resolved()
    with pytest.raises(ConfigError, match="embeddings: file not found"):
        RunConfig(model="bilstm", embeddings=str(tmp_path / "missing.txt")).resolved()
    with pytest.raises(ConfigError, match="unknown value 'glove-7B'"):
        RunConfig(model="bilstm", embeddings="glove-7B").resolved()
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    with pytest.raises(ConfigError, match="embeddings: .*not a Hugging Face model folder"):
        RunConfig(model="bilstm", embeddings=str(not_a_model)).resolved()


def test_glove_is_a_deprecated_alias_of_embeddings(tmp_path: Path):
    path = _write(tmp_path, "txt", _vectors())
    cfg = RunConfig(model="bilstm", glove=str(path)).resolved()
    assert (cfg.embeddings, cfg.glove, cfg.embed_dim) == (str(path.resolve()), "", DIM)
    assert RunConfig.from_dict(cfg.to_dict()).resolved() == cfg  # a resolved config resolves to itself
    with pytest.raises(ConfigError) as err:
        RunConfig(model="bilstm", glove=str(path), embeddings="glove-6B-50d").resolved()
    assert err.value.field == "glove"


def test_named_downloads_set_the_embedding_size():
    assert RunConfig(model="bilstm", embeddings="glove-6B-100d").resolved().embed_dim == 100
    assert RunConfig(model="bilstm").resolved().embed_dim == 300  # random
    assert "glove-6B-300d" in RunConfig.__dataclass_fields__["embeddings"].metadata["choices"]


# ---- the hub download, mocked ------------------------------------------------------------------------
def _fake_hub(tmp_path: Path, monkeypatch, sha: str | None = None):
    """A fake glove.6B.zip 'on the hub'; returns the list of calls made to it."""
    zpath = tmp_path / "hub-glove.6B.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("glove.6B.50d.txt", _lines(_vectors(50)))
        zf.writestr("glove.6B.300d.txt", _lines(_vectors(300)))
    calls = []
    state = {"downloaded": False}

    def fake_download(repo, filename, root, local_only):
        calls.append(("download", repo, filename, local_only))
        if local_only and not state["downloaded"]:
            raise FileNotFoundError("not cached")
        state["downloaded"] = True
        return str(zpath)

    def fake_sha(repo, filename):
        calls.append(("sha", repo, filename))
        return sha or hashlib.sha256(zpath.read_bytes()).hexdigest()

    monkeypatch.setattr(emb, "_hf_download", fake_download)
    monkeypatch.setattr(emb, "_expected_sha256", fake_sha)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return calls


def test_a_download_is_fetched_once_verified_and_then_read_from_the_cache(tmp_path: Path, monkeypatch):
    calls = _fake_hub(tmp_path, monkeypatch)
    home = tmp_path / "home"
    cfg = RunConfig(model="bilstm", embeddings="glove-6B-50d", data_home=str(home), hidden_size=4).resolved()
    model, enc = bilstm.build(cfg, TEXTS, LABELS)
    np.testing.assert_array_equal(model.embedding.weight[enc.vocab.stoi["puck"]].detach().numpy(),
                                  _vectors(50)["puck"])
    assert ("sha", emb.GLOVE_REPO, emb.GLOVE_FILE) in calls
    marker = json.loads((home / "embeddings" / "glove.6B.zip.sha256").read_text())
    assert len(marker["sha256"]) == 64 and marker["sha256"] == marker["hub_sha256"]
    calls.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # cached and verified: works offline, no hub call
    get_family("bilstm").preflight(cfg)
    assert emb.fetch_download("glove-6B-50d", home).name == "hub-glove.6B.zip"
    assert all(c[0] == "download" and c[3] for c in calls)


def test_a_download_with_the_wrong_checksum_is_refused(tmp_path: Path, monkeypatch):
    _fake_hub(tmp_path, monkeypatch, sha="0" * 64)
    with pytest.raises(emb.EmbeddingsError, match="sha256"):
        emb.fetch_download("glove-6B-300d", tmp_path / "home")


def test_offline_without_a_cached_copy_is_one_line_that_says_how_to_pass_a_file(tmp_path: Path, monkeypatch):
    _fake_hub(tmp_path, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = RunConfig(model="bilstm", embeddings="glove-6B-300d", data_home=str(tmp_path / "home")).resolved()
    with pytest.raises(ConfigError) as err:
        get_family("bilstm").preflight(cfg)
    message = str(err.value)
    assert err.value.field == "embeddings" and "\n" not in message
    assert "HF_HUB_OFFLINE" in message and "--embeddings /path/to/glove.6B.zip" in message


def test_no_network_is_one_line_too(tmp_path: Path, monkeypatch):
    _fake_hub(tmp_path, monkeypatch)

    def no_network(repo, filename):
        raise ConnectionError("Max retries exceeded with url: /api/models/stanfordnlp/glove\nmore detail")

    monkeypatch.setattr(emb, "_expected_sha256", no_network)
    with pytest.raises(emb.EmbeddingsError) as err:
        emb.fetch_download("glove-6B-300d", tmp_path / "home")
    assert "\n" not in str(err.value) and "ConnectionError" in str(err.value) and "--embeddings" in str(err.value)


def test_the_cli_refuses_an_uncached_download_offline_before_a_run_dir(tmp_path: Path, monkeypatch, capsys,
                                                                       fixture_data_home: Path):
    from newsclf.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runs = tmp_path / "runs"
    code = main(["train", "--model", "bilstm", "--embeddings", "glove-6B-100d", "--runs-dir", str(runs),
                 "--data-home", str(fixture_data_home)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--embeddings" in err
    assert not runs.exists() or not any(runs.iterdir())


# ---- a local Hugging Face encoder: sub-word BiLSTM ----------------------------------------------------
def test_the_hf_table_and_tokenizer_are_read_without_pickle(tiny_model_dirs):
    folder = tiny_model_dirs["bert"]
    table = emb.hf_embedding_table(folder)
    from transformers import AutoModel

    ref = AutoModel.from_pretrained(str(folder), local_files_only=True).get_input_embeddings().weight
    np.testing.assert_allclose(table, ref.detach().numpy())
    cfg = RunConfig(model="bilstm", embeddings=str(folder)).resolved()
    assert cfg.embed_dim == 32 and get_family("bilstm").describe(cfg.to_dict()).endswith("(sub-words) 32d")
    model, enc = bilstm.build(cfg, TEXTS, LABELS)
    assert isinstance(enc, SubwordEncoder) and model.arch.tokens == "subwords"
    weight = model.embedding.weight.detach().numpy()
    scale = weight[5, 0] / table[5, 0]
    np.testing.assert_allclose(weight[5:], table[5:] * scale, rtol=1e-4, atol=1e-6)  # rescaled copy
    info = model.arch.embeddings_info  # "zamboni" is not in the tiny vocabulary: [UNK]
    ids = [t for seq in enc.encode(TEXTS) for t in seq]
    assert 0 < info["vocab_coverage"] < 1 and enc.unk_id in ids
    assert info["token_coverage"] == round(sum(t != enc.unk_id for t in ids) / len(ids), 4)


def test_subword_offsets_align_to_words_and_skip_punctuation(tiny_model_dirs):
    enc = SubwordEncoder.from_hf(emb.hf_tokenizer(tiny_model_dirs["bert"]), max_len=8)
    text = "Goalies, skating!! -- fast"
    ids, spans = enc.encode_with_spans(text)
    pieces = [text[s:e] for s, e in spans]
    assert all(any(c.isalnum() for c in p) for p in pieces) and "".join(pieces).lower().startswith("goalies")
    assert enc.encode([text]) == [ids]
    long_ids, _ = enc.encode_with_spans("word " * 50)
    assert len(long_ids) == 8


def test_the_subword_bilstm_trains_saves_loads_predicts_and_explains(tmp_path: Path, fixture_data_home: Path,
                                                                   tiny_model_dirs):
    from newsclf.explain import explain
    from newsclf.predict import Predictor
    from tests.helpers.runs import train_tiny_run

    run = train_tiny_run(tmp_path / "runs", fixture_data_home, model="bilstm", name="sub", embed_dim=None,
                         embeddings=str(tiny_model_dirs["distilbert"]), epochs=2, limit_train=60)
    assert store.read_status(run)["state"] == "finished"
    results = json.loads((run / store.RESULTS).read_text())
    assert results["embeddings"]["tokens"] == "subwords" and results["embeddings"]["dim"] == 32
    assert {"vocab_coverage", "token_coverage", "source"} <= set(results["embeddings"])
    best = run / store.BEST
    assert sorted(p.name for p in best.iterdir()) == ["bilstm_config.json", "model.safetensors",
                                                      "subword_encoder.json", "tokenizer.json"]
    family = get_family("bilstm")
    model, enc = family.load(best)
    texts = ["the goalie stopped the puck", "orbit of the shuttle"]
    probs = family.predict_proba(model, enc, texts)
    assert probs.shape == (2, 20) and np.allclose(probs.sum(1), 1, atol=1e-5)
    predictor = Predictor(run, "bilstm", results["label_names"], json.loads((run / store.CONFIG).read_text()),
                          model, enc)
    text = "Skating goalies: the puck, the orbit!"
    for method in ("ig", "attention"):
        attr = explain(predictor, text, method, n_steps=8)
        assert attr.words == ["Skating", "goalies", "the", "puck", "the", "orbit"]
        assert all(s is not None for s in attr.scores) and attr.unaligned == 0.0
    assert sum(attr.scores) == pytest.approx(1.0, abs=1e-6)  # attention over sub-words, summed onto words


# ---- the recipe's phases, and old runs ---------------------------------------------------------------
def test_pretrained_embeddings_are_frozen_first_then_fine_tuned_slower(tmp_path: Path):
    path = _write(tmp_path, "txt", _vectors())
    cfg = RunConfig(model="bilstm", embeddings=str(path), hidden_size=4, epochs=3, embed_freeze_epochs=1,
                    embed_lr_scale=0.1, lr=1e-3).resolved()
    family = get_family("bilstm")
    model, _ = family.build(cfg, TEXTS, LABELS)
    first, second = family.phases(cfg)
    assert (first.epochs, second.epochs) == (1, 2)
    family.set_phase(model, cfg, first)
    groups = family.param_groups(model, cfg, first)
    assert not model.embedding.weight.requires_grad
    assert all(p is not model.embedding.weight for g in groups for p in g["params"])
    family.set_phase(model, cfg, second)
    (table,) = [g for g in family.param_groups(model, cfg, second) if any(p is model.embedding.weight for p in g["params"])]
    assert table["lr"] == pytest.approx(1e-4) and table["weight_decay"] == 0.0
    random_cfg = RunConfig(model="bilstm", hidden_size=4, epochs=3).resolved()
    assert [p.epochs for p in family.phases(random_cfg)] == [3]  # random vectors have nothing to protect


def test_an_old_best_folder_without_the_new_arch_keys_still_loads(tmp_path: Path):
    cfg = RunConfig(**{**PRESETS["BiLSTM + attention (study)"], "embed_dim": 8, "hidden_size": 4}).resolved()
    model, enc = bilstm.build(cfg, TEXTS, LABELS)
    bilstm.save(model.eval(), enc, tmp_path)
    old_keys = ("vocab_size", "num_labels", "embed_dim", "hidden_size", "num_layers", "dropout", "tfidf_weighting",
                "embeddings")
    arch = json.loads((tmp_path / bilstm.ARCH).read_text())
    (tmp_path / bilstm.ARCH).write_text(json.dumps({k: arch[k] for k in old_keys}))
    back, enc2 = bilstm.load(tmp_path)
    assert back.arch.pooling == "attention" and back.arch.tokens == "words" and back.arch.word_dropout == 0.0
    ids = torch.tensor(enc.encode(["puck orbit the"]))
    torch.testing.assert_close(back(input_ids=ids).logits, model(input_ids=ids).logits)
