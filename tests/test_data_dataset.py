"""newsclf.data.dataset: the seed/raw protocols, splits and documents on the synthetic fixture corpus."""
from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.corpus import QUOTE_MARKER, SIGNATURE_MARKER, make_fixture_archive, short_doc_ids
from newsclf import data

ROOT = Path(__file__).resolve().parents[1]
SEED_SIZES = {"train": 176, "val": 44, "test": 110}
RAW_SIZES = {"train": 192, "val": 48, "test": 120}
DOC_ID_RE = re.compile(r"^(train|test)/[a-z.-]+/\d+$")


# ---- protocol -------------------------------------------------------------------------------------
def test_seed_protocol_sizes_drop_and_cleaning(fixture_data_home):
    ds = data.load_dataset("seed", fixture_data_home)
    assert ds.sizes() == SEED_SIZES and ds.protocol == "seed"
    ids = [set(ds.train.doc_ids), set(ds.val.doc_ids), set(ds.test.doc_ids)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert not (short_doc_ids() & set().union(*ids))
    for split in (ds.train, ds.val, ds.test):
        assert split.labels.dtype == np.int64 and len(split.labels) == len(split.texts) == len(split.doc_ids)
        assert all(DOC_ID_RE.match(i) for i in split.doc_ids)
        assert all(data.CATEGORIES[y] == i.split("/")[1] for y, i in zip(split.labels, split.doc_ids))
        joined = "\n".join(split.texts)
        assert "From:" not in joined and QUOTE_MARKER not in joined and SIGNATURE_MARKER not in joined
    assert {i.split("/")[0] for i in ids[0] | ids[1]} == {"train"} and {i.split("/")[0] for i in ids[2]} == {"test"}


def test_val_split_is_stratified_and_seeded(fixture_data_home):
    ds = data.load_dataset(data_home=fixture_data_home)
    per_class = collections.Counter(ds.val.labels.tolist())
    assert len(per_class) == 20 and set(per_class.values()) <= {2, 3}  # 11 kept per class, 20% of 220
    other = data.load_dataset(data_home=fixture_data_home, seed=7)
    assert other.sizes() == SEED_SIZES and set(other.val.doc_ids) != set(ds.val.doc_ids)
    assert set(other.train.doc_ids) | set(other.val.doc_ids) == set(ds.train.doc_ids) | set(ds.val.doc_ids)


def test_raw_protocol_keeps_headers_and_short_docs(fixture_data_home):
    raw = data.load_dataset("raw", fixture_data_home, min_content_words=50)  # ignored by raw
    assert raw.sizes() == RAW_SIZES and raw.protocol == "raw"
    assert all(t.startswith("From:") for t in raw.train.texts)
    assert short_doc_ids() <= set(raw.train.doc_ids) | set(raw.val.doc_ids) | set(raw.test.doc_ids)
    assert any(QUOTE_MARKER in t for t in raw.test.texts)


def test_min_content_words_and_limit_train(fixture_data_home):
    full = data.load_dataset(data_home=fixture_data_home)
    limited = data.load_dataset(data_home=fixture_data_home, limit_train=30)
    assert len(limited.train) == 30 and limited.train.doc_ids == full.train.doc_ids[:30]
    assert limited.val.doc_ids == full.val.doc_ids and limited.test.doc_ids == full.test.doc_ids
    assert len(data.load_dataset(data_home=fixture_data_home, min_content_words=0).test) == 120
    with pytest.raises(data.DataError):
        data.load_dataset(data_home=fixture_data_home, val_size=1.5)
    with pytest.raises(data.DataError, match="protocol"):
        data.load_dataset("nope", fixture_data_home)


def test_dataset_is_cached_and_invalidated_by_reimport(tmp_path, fixture_archive):
    home = tmp_path / "home"
    data.import_archive(fixture_archive, home)
    first = data.load_dataset(data_home=home)
    assert data.load_dataset(data_home=str(home)) is first
    data.import_archive(make_fixture_archive(tmp_path / "other", 6, 2), home)
    assert len(data.load_dataset(data_home=home).test) == 30  # 40 - 10 short


def test_content_words():
    assert data.content_words("The NASA launch, it's 2 late!") == ["nasa", "launch", "s", "late"]


def test_get_documents_and_samples(fixture_data_home):
    ds = data.load_dataset(data_home=fixture_data_home)
    wanted = ds.val.doc_ids[:3] + ["train/sci.space/0", sorted(short_doc_ids())[0]]
    docs = data.get_documents(wanted, "seed", fixture_data_home)
    assert [docs[i] for i in ds.val.doc_ids[:3]] == ds.val.texts[:3]
    assert "train/sci.space/0" not in docs and sorted(short_doc_ids())[0] in docs  # dropped docs too
    samples = data.sample_documents("sci.space", 4, data_home=fixture_data_home, seed=1)
    assert len(samples) == 4 and {s.label for s in samples} == {"sci.space"}
    assert samples == data.sample_documents(14, 4, data_home=fixture_data_home, seed=1)
    assert len(data.sample_documents("sci.space", 99, "val", data_home=fixture_data_home)) in (2, 3)
    with pytest.raises(data.DataError):
        data.sample_documents("no.such.group", data_home=fixture_data_home)


def test_no_streamlit_or_torch(fixture_data_home):
    code = ("import sys, newsclf.data as d, newsclf.commands.data; d.load_dataset(); d.compute_stats(); "
            "bad = [m for m in ('streamlit', 'torch') if m in sys.modules]; assert not bad, bad")
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(fixture_data_home)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
