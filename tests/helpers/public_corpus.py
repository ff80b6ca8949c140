"""A public labelled text data set that no one here wrote, as a user would bring it: a CSV made from the
ChatterBot corpus (PyPI `chatterbot-corpus`, BSD licence; its YAML files ship inside the wheel, so nothing
is downloaded). Each conversation (its turns joined by line breaks: multi-line texts) is one row, labelled
by its YAML file's category (English: 21 topics, from 1,050 conversations down to 1) or by its language
(28 languages, many scripts).

    python -m tests.helpers.public_corpus OUT.csv [--by category|language]
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
from pathlib import Path


def corpus_root() -> Path | None:
    """The installed package's data folder (found without importing the package), or None."""
    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def conversations(by: str = "category") -> list[tuple[str, str, str]]:
    """(id, text, label) of every conversation: English ones by category, or all by language."""
    import yaml

    root = corpus_root()
    if root is None:
        raise RuntimeError("chatterbot-corpus is not installed (pip install chatterbot-corpus==1.3.3)")
    rows = []
    for path in sorted(root.glob("*/*.yml")):
        language = path.parent.name
        if by == "category" and language != "english":
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        label = (doc.get("categories") or [path.stem])[0] if by == "category" else language
        for i, turns in enumerate(doc.get("conversations") or []):
            text = "\n".join(str(t) for t in (turns if isinstance(turns, list) else [turns]) if t is not None)
            rows.append((f"{language}/{path.stem}/{i}", text, str(label)))
    return rows


def write_csv(path: Path, by: str = "category") -> list[tuple[str, str, str]]:
    """The CSV a user would write with the csv module: id,text,label, minimal quoting, UTF-8."""
    rows = conversations(by)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text", "label"])
        writer.writerows(rows)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--by", choices=("category", "language"), default="category")
    args = parser.parse_args()
    print(f"{len(write_csv(args.out, args.by)):,} rows -> {args.out}")
