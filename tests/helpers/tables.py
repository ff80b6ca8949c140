"""Tables the corpus-import tests make: small hand-written ones and synthetic n-class ones, in any format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COMMON = ("the of and to in is that it for on with as was at by this be from or have an are not but "
          "what all were when we there can more if no out so said one about up time them some could").split()


def small_frame() -> pd.DataFrame:
    """12 rows, 3 classes, a split column: quoted multi-line texts with commas and quotes, non-ASCII, a
    formula, an empty text (row 5), a missing label (row 8)."""
    texts = [
        'First line\nsecond line, with a comma and "quotes"',
        "café crème — naïve façade, 日本語のテキスト",
        "=HYPERLINK(\"http://example.invalid\", \"click\")",
        "plain text about sport and football matches",
        "   ",
        "a text\r\nwith a Windows line break",
        "tabs\tinside\ta text",
        "a text whose label is missing",
        "emoji 🙂 and more words here",
        "+cmd|' /C calc'!A0 looks like a formula too",
        "short",
        "the last row, about politics and elections",
    ]
    labels = ["pos", "neg", "=1+2", "pos", "neg", "pos", "neg", None, "=1+2", "pos", "neg", "=1+2"]
    splits = ["train", "Train", "validation", "train", "test", "val", "train", "test", "test", "test", "dev", "train"]
    return pd.DataFrame({"text": texts, "label": labels, "split": splits})


def class_frame(n_classes: int, per_class: int, seed: int = 0, words: int = 30) -> pd.DataFrame:
    """A learnable synthetic table: each text mixes common words with words of its class
    (``cls<class letters>w<k letter>``, e.g. clsbaw...); classes named ``class-000`` ...; rows in class
    order (a sorted file)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_classes):
        own = [f"cls{_letters(c)}w{'abcdefgh'[k]}" for k in range(8)]
        for _ in range(per_class):
            picks = rng.choice(COMMON, size=words - 6).tolist() + rng.choice(own, size=6).tolist()
            rng.shuffle(picks)
            rows.append((" ".join(picks), f"class-{c:03d}"))
    return pd.DataFrame(rows, columns=["text", "label"])


def write(frame: pd.DataFrame, path: Path, fmt: str | None = None) -> Path:
    """`frame` as CSV, TSV, JSON Lines or Parquet (from the extension), as pandas writes them."""
    fmt = fmt or {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _letters(n: int) -> str:
    """0 -> "a", 25 -> "z", 26 -> "ba": words the tokenisers keep whole (letters only)."""
    out = ""
    while True:
        out = "abcdefghijklmnopqrstuvwxyz"[n % 26] + out
        n //= 26
        if not n:
            return out
