"""`newsclf predict RUN... --text ...`: the top classes with probabilities, per run."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from newsclf.config import MAX_TEXT_CHARS, resolve_runs_dir
from newsclf.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top classes with probabilities, per run")
    add_runs_and_text(p)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--calibrated", action="store_true",
                   help="apply each run's temperature fitted on validation (`newsclf calibrate RUN` first); "
                        "the top class never changes, the probabilities become better calibrated")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def add_runs_and_text(p: argparse.ArgumentParser) -> None:
    """RUN... and the text to read: --text, or --file (a path, or '-' for standard input)."""
    p.add_argument("runs", nargs="+", metavar="RUN")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--file", help="a UTF-8 text file ('-' for standard input)")


def read_text_arg(text: str | None, file: str | None) -> str:
    from newsclf.predict import InputError, validate_text

    try:
        if file is None:
            return validate_text(text, "text")
        raw = sys.stdin.buffer.read(MAX_TEXT_CHARS * 4 + 1) if file == "-" else _read_file(Path(file))
        if len(raw) > MAX_TEXT_CHARS * 4:
            raise InputError(f"file: more than {MAX_TEXT_CHARS:,} characters; shorten it")
        return validate_text(raw, "file")
    except InputError as exc:
        raise UserError(str(exc)) from None


def _read_file(path: Path) -> bytes:
    """At most MAX_TEXT_CHARS * 4 + 1 bytes of a regular file (a FIFO or device is refused, never waited on)."""
    from newsclf.safeio import UnsafePathError, open_regular

    try:
        with open_regular(path) as fh:
            return fh.read(MAX_TEXT_CHARS * 4 + 1)
    except UnsafePathError as exc:
        raise UserError(f"file: {exc}") from None
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise UserError(f"file: {path} does not exist or is not a file") from None


def cmd_predict(args: argparse.Namespace) -> int:
    from newsclf.predict import load_predictor, top_classes

    if args.top_k <= 0:
        raise UserError("top-k: must be a positive integer")
    text = read_text_arg(args.text, args.file)
    runs_dir = resolve_runs_dir(args.runs_dir)
    out = []
    for run in args.runs:
        predictor = load_predictor(run, runs_dir, device=args.device)
        if args.calibrated:
            from newsclf.calibration import calibrated_proba

            probs = calibrated_proba(predictor, [text])[0]
        else:
            probs = predictor.predict_proba([text])[0]
        top = top_classes(probs, predictor.label_names, args.top_k)
        out.append({"run_id": predictor.run_id, "model": predictor.kind, "calibrated": bool(args.calibrated),
                    "top": [{"label": label, "prob": prob} for label, prob in top]})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for item in out:
        print(f"{item['run_id']} ({item['model']}{', calibrated' if item['calibrated'] else ''})")
        for t in item["top"]:
            print(f"  {t['prob']:6.1%}  {t['label']}")
    return 0
