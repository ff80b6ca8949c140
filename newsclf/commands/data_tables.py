"""`python -m newsclf data import-table | list` and `data stats --corpus NAME`: corpora of your own.

    data import-table PATH --name NAME --text COL --label COL [--split COL] [--id COL]
                      [--format csv|tsv|jsonl|parquet] [--seed N] [--val-size F] [--test-size F]
                      [--force] [--data-home DIR]
    data list [--json] [--data-home DIR]
    data stats --corpus NAME [--json] [--top-k K] [--data-home DIR]

Registered by newsclf.commands.data (one `data` command group); the library does the work
(newsclf.data.ingest, newsclf.data.corpora, newsclf.data.corpus_stats).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction, add_data_home) -> None:
    """Add import-table and list to the `data` group's sub-commands."""
    imp = sub.add_parser("import-table", help="import a CSV, TSV, JSON Lines or Parquet table as a named corpus",
                         description="Import a labelled text table as a named corpus in the data home. Rows with "
                                     "an empty text or no label are dropped and counted; anything else wrong "
                                     "refuses the whole import (nothing is half-imported).")
    imp.add_argument("path", help="the table file (a regular file, not a link)")
    imp.add_argument("--name", required=True, help="corpus name: 1-64 lowercase letters, digits, - or _")
    imp.add_argument("--text", required=True, metavar="COL", help="the column (JSON key) holding the texts")
    imp.add_argument("--label", required=True, metavar="COL", help="the column holding the labels (text or integers)")
    imp.add_argument("--split", default=None, metavar="COL",
                     help="a column of train / validation (val, dev) / test per row; default: a stratified split")
    imp.add_argument("--id", default=None, metavar="COL", help="a column of unique document ids (default: row-N)")
    imp.add_argument("--format", default=None, choices=("csv", "tsv", "jsonl", "parquet"),
                     help="the file's format (default: from its extension)")
    imp.add_argument("--seed", type=int, default=42, help="seed of the split and the load order (default: 42)")
    imp.add_argument("--val-size", type=float, default=0.1,
                     help="validation share of each class (of train, with --split) (default: 0.1)")
    imp.add_argument("--test-size", type=float, default=None,
                     help="test share of each class, without --split (default: 0.2)")
    imp.add_argument("--force", action="store_true", help="replace an existing corpus of that name (a new version)")
    add_data_home(imp)
    imp.set_defaults(func=cmd_import_table)

    lst = sub.add_parser("list", help="the corpora in the data home (20newsgroups and imported tables)")
    lst.add_argument("--json", action="store_true", help="print the list as JSON")
    add_data_home(lst)
    lst.set_defaults(func=cmd_list)


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)


def cmd_import_table(args: argparse.Namespace) -> int:
    from newsclf.data.corpus_stats import corpus_stats
    from newsclf.data.ingest import import_table

    result = import_table(args.path, args.name, args.text, args.label, args.split, args.id,
                          data_home=args.data_home, fmt=args.format, seed=args.seed, val_size=args.val_size,
                          test_size=args.test_size, force=args.force, progress=_progress)
    meta = result.meta
    print(f"imported corpus {meta.name!r} (version {meta.version}) into {result.path} in {result.seconds:.1f} s")
    for line in describe_import(meta, result.dropped_rows):
        print(f"  {line}")
    _progress(1.0, "computing the corpus statistics for the dashboard")
    stats = corpus_stats(meta.name, args.data_home)
    across = stats.duplicates["across_splits"]
    if any(across.values()):
        print("  note: texts also in another split: " + ", ".join(f"{k} {v:,}" for k, v in across.items()))
    return 0


def describe_import(meta: Any, dropped_rows: dict[str, list[int]] | None = None) -> list[str]:
    """Plain lines about an imported corpus: rows, sizes, dropped rows, split rule, checksum."""
    s = meta.sizes
    unit = "line" if meta.source_format == "jsonl" else "row"
    lines = [f"rows     {meta.rows_read:,} read from {meta.source_file} ({meta.source_format}); {meta.n_docs:,} kept: "
             f"train {s['train']:,} / val {s['val']:,} / test {s['test']:,}; {meta.n_classes:,} classes"]
    dropped = []
    for kind, count, what in (("empty_text", meta.dropped_empty_text, "with an empty text"),
                              ("missing_label", meta.dropped_missing_label, "without a label")):
        if count:
            where = (dropped_rows or {}).get(kind) or []
            units = unit if count == 1 else unit + "s"
            shown = f" ({units} {', '.join(f'{r:,}' for r in where)}{', ...' if count > len(where) else ''})" if where else ""
            dropped.append(f"{count:,} {what}{shown}")
    if dropped:
        lines.append("dropped  " + "; ".join(dropped))
    sizes = f"val {meta.val_size:g}" + (f", test {meta.test_size:g}" if meta.test_size is not None else "")
    lines.append(f"split    {meta.split_rule} (seed {meta.seed}; {sizes})")
    for count, what in ((meta.classes_without_val, "validation"), (meta.classes_without_test, "test")):
        if count:
            lines.append(f"note     {count:,} classes have no {what} row (too few rows for the share)")
    lines.append(f"data sha256 {meta.data_sha256}")
    return lines


def cmd_list(args: argparse.Namespace) -> int:
    from newsclf.data.corpora import list_corpora

    rows = list_corpora(args.data_home)
    if args.json:
        print(json.dumps([{"name": r.name, "builtin": r.builtin, "available": r.available, "sha256": r.sha256,
                           "meta": r.meta.to_dict() if r.meta else None, "problem": r.problem} for r in rows], indent=2))
        return 0
    for r in rows:
        if r.builtin:
            state = "imported" if r.available else "not imported (python -m newsclf data import|fetch)"
            print(f"{r.name:<24} built in    {state}")
        elif r.meta is None or r.problem:
            print(f"{r.name:<24} damaged     {r.problem}")
        else:
            m = r.meta
            print(f"{r.name:<24} version {m.version:<3} {m.n_docs:,} docs, {m.n_classes:,} classes (train "
                  f"{m.sizes['train']:,} / val {m.sizes['val']:,} / test {m.sizes['test']:,}), from {m.source_file}, "
                  f"{m.created}, data {m.data_sha256[:12]}")
    return 0


def cmd_corpus_stats(args: argparse.Namespace) -> int:
    from newsclf.data import DataError
    from newsclf.data.corpus_stats import corpus_stats

    if args.protocol is not None:
        raise DataError("--protocol: applies to 20newsgroups only (an imported corpus has the splits of its import)")
    stats = corpus_stats(args.corpus, args.data_home, top_k=args.top_k).to_dict()
    print(json.dumps(stats, indent=2) if args.json else format_corpus_stats(stats))
    return 0


def format_corpus_stats(stats: dict[str, Any], max_classes: int = 30) -> str:
    """Plain-text tables of a CorpusStats.to_dict(); beyond `max_classes` classes, the largest and smallest."""
    bal, wpd, short, dup = stats["class_balance"], stats["words_per_doc"], stats["short_docs"], stats["duplicates"]
    sp = stats["splits"]
    lines = [f"corpus {stats['corpus']!r}: {stats['n_docs']:,} documents, {stats['n_classes']:,} classes",
             f"  splits      train {sp['train']:,} / val {sp['val']:,} / test {sp['test']:,}",
             f"  dropped     {stats['dropped'].get('empty_text', 0):,} empty texts, "
             f"{stats['dropped'].get('missing_label', 0):,} without a label (at import)", "",
             "documents per class (train / val / test)"]
    counts = sorted(stats["class_counts"].items(), key=lambda kv: -kv[1]["total"])
    shown = counts if len(counts) <= max_classes else counts[:max_classes // 2] + counts[-(max_classes // 2):]
    for i, (name, c) in enumerate(shown):
        if len(counts) > max_classes and i == max_classes // 2:
            lines.append(f"  ... {len(counts) - max_classes:,} more classes ...")
        lines.append(f"  {name[:40]:<42}{c['train']:>8,}{c['val']:>8,}{c['test']:>8,}")
    lines += [f"  smallest {bal['min']:,} ({bal['min_class'][:40]}), largest {bal['max']:,} ({bal['max_class'][:40]}), "
              f"ratio {bal['ratio']:.1f}", "", "words per document",
              "  " + "  ".join(f"{k} {wpd[k]:,.1f}" for k in ("mean", "std", "min", "q25", "median", "q75", "max")),
              f"  very short (< {short['threshold_words']} words): {short['count']:,} "
              f"({', '.join(f'{k} {v:,}' for k, v in short['by_split'].items())})", "",
              "duplicates (lowercased, whitespace collapsed)",
              "  within a split: " + ", ".join(f"{k} {v:,}" for k, v in dup["within_split"].items()),
              "  across splits:  " + ", ".join(f"{k} {v:,}" for k, v in dup["across_splits"].items()),
              f"  same text, different labels: {dup['conflicting_labels']:,}"]
    if any(stats["top_words"].values()):
        lines += ["", f"top words per class (training split, {stats['top_words_docs']:,} documents)"]
        lines += [f"  {name[:40]:<42}" + ", ".join(f"{w} ({c})" for w, c in stats["top_words"].get(name, []))
                  for name, _ in shown]
    return "\n".join(lines)
