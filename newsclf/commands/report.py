"""`newsclf report RUN... --out DIR [--force]`: an offline HTML comparison page, CSVs and a Markdown summary."""
from __future__ import annotations

import argparse

from newsclf.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="compare finished runs: paired tests, calibration, error slices (HTML + CSV + Markdown)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--out", required=True, help="folder to write (created; must be empty unless --force)")
    p.add_argument("--force", action="store_true", help="write into a non-empty --out folder (our files are replaced)")
    p.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (at least 1000 for the 95 %% intervals)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--data-home", default=None, help="corpus for the length slices (default $NEWSCLF_DATA_HOME or data/)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from newsclf.report import write_report

    if not 1000 <= args.n_boot <= 100_000:
        raise UserError(f"n-boot: must be from 1000 to 100000, got {args.n_boot}")
    if args.seed < 0:
        raise UserError("seed: must be non-negative")
    paths = write_report(args.runs, args.out, args.runs_dir, args.data_home, force=args.force,
                         n_boot=args.n_boot, seed=args.seed)
    print((paths["summary.md"]).read_text(encoding="utf-8").split("## Metrics")[0].strip())
    print(f"\nwrote {len(paths)} files to {paths['report.html'].parent} (open report.html)")
    return 0
