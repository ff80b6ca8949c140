"""`python -m newsclf data ...`: fetch, import and inspect the 20 Newsgroups corpus.

    data fetch  [--data-home DIR]              download with scikit-learn's fetcher (in a private temp
                                               folder), then install it as an import does
    data import PATH [--data-home DIR]         offline import of 20news-bydate.tar.gz or its folder
                                               (refuses a damaged/incomplete archive)
    Both write newsclf's corpus cache (no pickle) and precompute the stats of both protocols.
    data stats  [--json] [--protocol seed|raw] [--top-k K] [--data-home DIR]
    data import-table | list | stats --corpus NAME    corpora of your own: see newsclf.commands.data_tables

Problems the user can fix raise newsclf.data.DataError (cli.main prints them, exit code 2).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from newsclf.config import PROTOCOLS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `data` command group with its fetch/import/stats sub-commands."""
    parser = subparsers.add_parser("data", help="download, import and inspect the 20 Newsgroups corpus",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    fetch = sub.add_parser("fetch", help="download the corpus with scikit-learn (needs internet)")
    _add_data_home(fetch)
    fetch.set_defaults(func=cmd_fetch)

    imp = sub.add_parser("import", help="import a local 20news-bydate.tar.gz (or its extracted folder), offline")
    imp.add_argument("path", help="path to 20news-bydate.tar.gz or to the folder holding "
                                  "20news-bydate-train/ and 20news-bydate-test/")
    _add_data_home(imp)
    imp.set_defaults(func=cmd_import)

    stats = sub.add_parser("stats", help="corpus statistics: class counts, words per document, splits, top words")
    stats.add_argument("--json", action="store_true", help="print the statistics as JSON")
    stats.add_argument("--corpus", default="20newsgroups", help="corpus name (default: 20newsgroups)")
    stats.add_argument("--protocol", choices=PROTOCOLS, default=None,
                       help="data protocol of 20newsgroups (default: seed)")
    stats.add_argument("--top-k", type=int, default=10, help="top words per class (default: 10)")
    _add_data_home(stats)
    stats.set_defaults(func=cmd_stats)

    from newsclf.commands import data_tables

    data_tables.register(sub, _add_data_home)


def _add_data_home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-home", default=None,
                        help="dataset cache folder (default: $NEWSCLF_DATA_HOME or data/)")


def cmd_fetch(args: argparse.Namespace) -> int:
    from newsclf import data

    start = time.perf_counter()
    path = data.fetch_corpus(args.data_home, progress=_progress)
    print(f"corpus cached in {path} ({time.perf_counter() - start:.1f} s)")
    _precompute_and_print(args.data_home)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from newsclf import data

    start = time.perf_counter()
    path = data.import_archive(args.path, args.data_home, progress=_progress)
    print(f"corpus cached in {path} ({time.perf_counter() - start:.1f} s)")
    _precompute_and_print(args.data_home)
    return 0


def _precompute_and_print(data_home: str | None) -> None:
    from newsclf import data

    _progress(1.0, "computing the dataset statistics (both protocols) for the dashboard")
    stats = data.precompute_stats(data_home)
    _print_sizes(stats["seed"].splits)


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def _print_sizes(sizes: dict[str, int]) -> None:
    print("seed protocol: " + ", ".join(f"{name} {n:,}" for name, n in sizes.items()))


def cmd_stats(args: argparse.Namespace) -> int:
    from newsclf import data

    if args.top_k < 0:
        raise data.DataError("--top-k: must be >= 0")
    if args.corpus != data.DEFAULT_CORPUS:
        from newsclf.commands.data_tables import cmd_corpus_stats

        return cmd_corpus_stats(args)
    stats = data.compute_stats(args.data_home, protocol=args.protocol or "seed", top_k=args.top_k).to_dict()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats(stats))
    return 0


def format_stats(stats: dict[str, Any]) -> str:
    """Plain-text tables of a DatasetStats.to_dict()."""
    ccs, wpd = stats["class_count_stats"], stats["words_per_doc"]
    lines = [f"20 Newsgroups, protocol {stats['protocol']!r} (whole corpus, before dropping)",
             f"  documents   {stats['n_docs']:>12,}",
             f"  words       {stats['total_words']:>12,}",
             f"  characters  {stats['total_chars']:>12,}", "",
             "documents per class"]
    lines += [f"  {name:<26}{count:>6,}" for name, count in stats["class_counts"].items()]
    lines += [f"  min {ccs['min']} ({ccs['min_class']}), max {ccs['max']} ({ccs['max_class']}), "
              f"mean {ccs['mean']:.1f}, std {ccs['std']:.1f}", "",
              "words per document",
              "  " + "  ".join(f"{k} {wpd[k]:,.1f}" if isinstance(wpd[k], float) else f"{k} {wpd[k]:,}"
                               for k in ("mean", "std", "min", "q25", "median", "q75", "max")), "",
              "split sizes"]
    lines += [f"  {name:<6}{n:>8,}" for name, n in stats["splits"].items()]
    if any(stats["top_words"].values()):
        lines += ["", "top words per class (training split)"]
        lines += [f"  {name:<26}" + ", ".join(f"{w} ({c})" for w, c in words)
                  for name, words in stats["top_words"].items()]
    return "\n".join(lines)
