"""`newsclf calibrate RUN...`: fit a temperature on each run's validation predictions and store it
(calibration.json; `temperature` and `ece_*` in results.json). Predictions stay as they were unless
a caller asks for calibrated probabilities (newsclf.calibration.calibrated_proba)."""
from __future__ import annotations

import argparse
import json

from newsclf.config import resolve_runs_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a temperature on validation; show ECE before/after (argmax unchanged)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from newsclf import store
    from newsclf.calibration import calibrate_run

    runs_dir = resolve_runs_dir(args.runs_dir)
    paths = [store.resolve_run(run, runs_dir) for run in args.runs]  # every id checked before anything is written
    out = {path.name: calibrate_run(path).to_dict() for path in paths}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'run':<44} {'T':>6} {'ECE val':>8} {'-> T':>6} {'ECE test':>9} {'-> T':>6}")
    for run_id, c in out.items():
        print(f"{run_id:<44} {c['temperature']:6.2f} {c['ece_val']:8.3f} {c['ece_val_scaled']:6.3f} "
              f"{c['ece_test']:9.3f} {c['ece_test_scaled']:6.3f}")
    return 0
