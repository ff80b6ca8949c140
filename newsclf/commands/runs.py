"""`newsclf runs list` and `newsclf predict`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from newsclf import store
from newsclf.cli import UserError
from newsclf.config import MAX_TEXT_CHARS, resolve_runs_dir


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("runs", help="list run directories")
    rs = r.add_subparsers(dest="runs_command", required=True)
    lst = rs.add_parser("list", help="all runs, newest first")
    lst.add_argument("--runs-dir", default=None)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    p = sub.add_parser("predict", help="top classes with probabilities, per run")
    p.add_argument("runs", nargs="+", metavar="RUN")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--file", help="a UTF-8 text file ('-' for standard input)")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def run_row(info: store.RunInfo) -> dict:
    res = info.results or {}
    return {"run_id": info.run_id, "model": info.model, "state": info.state,
            **{k: res.get(k) for k in ("val_acc", "test_acc", "f1_macro", "train_seconds",
                                        "inference_ms_per_doc", "params")}}


def cmd_list(args: argparse.Namespace) -> int:
    from newsclf.jobs import reconcile_direct_runs

    reconcile_direct_runs(resolve_runs_dir(args.runs_dir))  # a killed trainer must not stay "running"
    rows = [run_row(r) for r in store.list_runs(resolve_runs_dir(args.runs_dir))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet: python -m newsclf train --model tfidf")
        return 0
    print(f"{'run':<44} {'state':<10} {'val':>7} {'test':>7} {'f1':>7}")
    for row in rows:
        cells = [f"{row[k]:.4f}" if isinstance(row[k], float) else "-" for k in ("val_acc", "test_acc", "f1_macro")]
        print(f"{row['run_id']:<44} {row['state']:<10} {cells[0]:>7} {cells[1]:>7} {cells[2]:>7}")
    return 0


def read_text_arg(text: str | None, file: str | None) -> str:
    from newsclf.predict import InputError, validate_text

    try:
        if file is None:
            return validate_text(text, "text")
        raw = sys.stdin.buffer.read(MAX_TEXT_CHARS * 4 + 1) if file == "-" else _read_file(Path(file))
        if len(raw) > MAX_TEXT_CHARS * 4:
            raise InputError(f"file: larger than {MAX_TEXT_CHARS * 4:,} bytes; shorten it")
        return validate_text(raw, "file")
    except InputError as exc:
        raise UserError(str(exc)) from None


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(f"file: {path} does not exist or is not a file")
    with open(path, "rb") as fh:
        return fh.read(MAX_TEXT_CHARS * 4 + 1)


def cmd_predict(args: argparse.Namespace) -> int:
    from newsclf.predict import load_predictor

    if args.top_k <= 0:
        raise UserError("top-k: must be a positive integer")
    text = read_text_arg(args.text, args.file)
    runs_dir = resolve_runs_dir(args.runs_dir)
    out = []
    for run in args.runs:
        predictor = load_predictor(run, runs_dir, device=args.device)
        top = predictor.top_k(text, args.top_k)
        out.append({"run_id": predictor.run_id, "model": predictor.kind,
                    "top": [{"label": label, "prob": prob} for label, prob in top]})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for item in out:
        print(f"{item['run_id']} ({item['model']})")
        for t in item["top"]:
            print(f"  {t['prob']:6.1%}  {t['label']}")
    return 0
