"""Header leakage: the same config under the seed and the raw protocol ("twins"), the accuracy drop between
them, and how much of a raw run's attribution lies on the header block (before the first blank line).

Data in, DataFrames and numbers out (no Streamlit, no figures).
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import pandas as pd

from newsclf import store
from newsclf.compare import MODEL, RUN, run_detail

TWIN_IGNORED = ("name", "protocol", "data_home", "device", "eval_batch_size")
LEAKAGE_COLUMNS = [RUN, MODEL, "seed test acc", "raw run", "raw test acc", "raw - seed (points)"]
HEADER_END = re.compile(r"\n[ \t]*\n")


def _twin_key(config: Mapping[str, Any]) -> str:
    import json

    return json.dumps({k: v for k, v in config.items() if k not in TWIN_IGNORED}, sort_keys=True, default=str)


def protocol_twins(runs: Sequence[store.RunInfo]) -> pd.DataFrame:
    """Pairs of finished runs whose configs match except `protocol` (seed vs raw, headers kept): the
    accuracy each gains from the headers. The newest run of each config and protocol is used."""
    newest: dict[tuple[str, str], store.RunInfo] = {}
    for r in runs:  # store lists newest first
        newest.setdefault((_twin_key(r.config), str(r.config.get("protocol", "seed"))), r)
    rows = []
    for (key, protocol), seed in newest.items():
        raw = newest.get((key, "raw"))
        if protocol != "seed" or raw is None:
            continue
        a, b = float(seed.results["test_acc"]), float(raw.results["test_acc"])
        rows.append({RUN: seed.run_id, MODEL: run_detail(seed), "seed test acc": a, "raw run": raw.run_id,
                     "raw test acc": b, "raw - seed (points)": (b - a) * 100})
    return pd.DataFrame(rows, columns=LEAKAGE_COLUMNS)


def missing_twins(runs: Sequence[store.RunInfo]) -> list[store.RunInfo]:
    """Finished runs trained from a config whose other-protocol twin is not among `runs`."""
    from newsclf.models import get_family

    keys = {(_twin_key(r.config), str(r.config.get("protocol", "seed"))) for r in runs}
    out = []
    for r in runs:
        try:
            trainable = get_family(r.model).trainable
        except ValueError:
            continue
        if trainable and (_twin_key(r.config), other_protocol(r.config)) not in keys:
            out.append(r)
    return out


def other_protocol(config: Mapping[str, Any]) -> str:
    return "seed" if str(config.get("protocol", "seed")) == "raw" else "raw"


def twin_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's config under the other protocol (named after the original with the protocol appended)."""
    protocol = other_protocol(config)
    name = str(config.get("name") or "").strip() or "run"
    return {**config, "protocol": protocol, "name": f"{name[:100]}-{protocol}"}


def header_end(text: str) -> int:
    """End (character offset) of a post's header block: everything before the first blank line; 0 without one."""
    m = HEADER_END.search(text)
    return m.start() if m else 0


def header_attribution_share(offsets: Sequence[Sequence[int]], scores: Sequence[float | None], text: str) -> float | None:
    """Share of the attribution mass (sum of |score| over seen words) that falls on words of the header
    block; None when the text has no header block or no mass."""
    end = header_end(text)
    mass = [(abs(s), o[0] < end) for o, s in zip(offsets, scores) if s is not None]
    total = sum(m for m, _ in mass)
    if end == 0 or total <= 0:
        return None
    return float(sum(m for m, in_header in mass if in_header) / total)
