"""Corpora of your own (newsclf.data: import_table, load_corpus, list_corpora, corpus_stats): tables in four
formats, the split rules, labels as text or integers, the round trip import -> load, and 20 Newsgroups
unchanged behind the same API."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from newsclf import data
from newsclf.cli import main
from newsclf.data.splits import stratified
from tests.helpers.tables import class_frame, small_frame, write


def _load(name, home):
    return data.load_corpus(name, home)


def _all(ds):
    """{doc id: (text, label name, split)} of a loaded corpus."""
    out = {}
    for split in ("train", "val", "test"):
        part = ds.split(split)
        for i, text, label in zip(part.doc_ids, part.texts, part.labels):
            out[i] = (text, ds.label_names[int(label)], split)
    return out


# ---- the round trip -------------------------------------------------------------------------------------
def test_csv_round_trip_keeps_multiline_quoted_texts_exactly(tmp_path):
    """Every kept row comes back with its exact text (line breaks, CRLF, tabs, quotes, non-ASCII, a formula),
    its label and its given split; the empty text and the missing label are dropped and counted."""
    frame = small_frame()
    src = write(frame, tmp_path / "small.csv")
    result = data.import_table(src, "small", "text", "label", "split", data_home=tmp_path / "home")
    assert (result.meta.rows_read, result.meta.dropped_empty_text, result.meta.dropped_missing_label) == (12, 1, 1)
    assert result.dropped_rows == {"empty_text": [5], "missing_label": [8]}
    got = _all(_load("small", tmp_path / "home"))
    canon = {"train": "train", "val": "val", "validation": "val", "dev": "val", "test": "test"}
    want = {f"row-{i + 1}": (t, lab, canon[s.lower()]) for i, (t, lab, s) in enumerate(frame.itertuples(index=False))
            if i not in (4, 7)}
    assert got == want
    assert got["row-3"][1] == "=1+2" and got["row-3"][0].startswith("=HYPERLINK")  # stored as is
    assert "\r\n" in got["row-6"][0] and "\t" in got["row-7"][0]


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "parquet"])
def test_every_format_gives_the_csv_corpus(tmp_path, fmt):
    """The same table as TSV, JSON Lines or Parquet: the same documents, labels, ids, splits and data
    checksum as the CSV (the file's own checksum differs: its metadata names the source)."""
    frame = class_frame(3, 20, seed=1)
    frame.loc[4, "text"] = 'multi\nline, "quoted"'
    home = tmp_path / "home"
    ref = data.import_table(write(frame, tmp_path / "t.csv"), "ref", "text", "label", data_home=home)
    other = data.import_table(write(frame, tmp_path / f"t.{fmt}"), "other", "text", "label", data_home=home)
    assert other.meta.data_sha256 == ref.meta.data_sha256 and other.sha256 != ref.sha256
    assert other.meta.source_format == fmt
    assert _all(_load("other", home)) == _all(_load("ref", home))


def test_loaded_corpus_is_the_training_dataset_shape(tmp_path):
    """load_corpus returns what training consumes: Split(texts, int64 labels, doc ids) x 3, label names,
    plus the corpus name and its data checksum (== corpus_identity)."""
    home = tmp_path / "home"
    data.import_table(write(class_frame(2, 40), tmp_path / "two.csv"), "two", "text", "label", data_home=home)
    ds = _load("two", home)
    assert isinstance(ds, data.Dataset) and ds.label_names == ["class-000", "class-001"]
    assert ds.train.labels.dtype == np.int64 and all(isinstance(t, str) for t in ds.train.texts)
    assert ds.sizes() == {"train": 56, "val": 8, "test": 16}
    assert (ds.corpus, ds.checksum) == tuple(data.corpus_identity("two", home))
    assert ds.protocol == "imported"
    assert _load("two", home) is ds  # cached per process, keyed on the file
    assert data.corpus_documents("two", [ds.test.doc_ids[0], "nope"], home) == {ds.test.doc_ids[0]: ds.test.texts[0]}


def test_150_classes_import_and_every_class_trains(tmp_path):
    home = tmp_path / "home"
    data.import_table(write(class_frame(150, 12, seed=2), tmp_path / "many.parquet"), "many", "text", "label",
                      data_home=home)
    ds = _load("many", home)
    assert len(ds.label_names) == 150 and ds.label_names[:2] == ["class-000", "class-001"]
    assert set(ds.train.labels.tolist()) == set(range(150))
    assert set(ds.test.labels.tolist()) == set(range(150))  # 12 rows: floor(2.4+.5)=2 test, 1 val each


# ---- splits ---------------------------------------------------------------------------------------------
def test_stratified_rule_per_class_and_seeded(tmp_path):
    """Each class: floor(n*test+.5) to test, floor(n*val+.5) to val, the rest to train; classes of 1, 2
    and 3 rows keep a training row; the same seed gives the same split, another seed another one."""
    counts = [1, 2, 3, 7, 40]
    codes = np.repeat(np.arange(5), counts)
    split = stratified(codes, 5, 0.1, 0.2, np.random.default_rng(0))
    for c, n in enumerate(counts):
        got = np.bincount(split[codes == c], minlength=3).tolist()
        test, val = int(np.floor(n * 0.2 + 0.5)), int(np.floor(n * 0.1 + 0.5))
        while test + val > n - 1:
            val, test = (val - 1, test) if val else (val, test - 1)
        assert got == [n - test - val, val, test], (n, got)
    assert (split == stratified(codes, 5, 0.1, 0.2, np.random.default_rng(0))).all()
    assert (split != stratified(codes, 5, 0.1, 0.2, np.random.default_rng(1))).any()


def test_split_seed_and_sizes_reach_the_corpus(tmp_path):
    home = tmp_path / "home"
    src = write(class_frame(4, 50), tmp_path / "t.csv")
    a = data.import_table(src, "a", "text", "label", data_home=home, seed=7, val_size=0.2, test_size=0.3)
    b = data.import_table(src, "b", "text", "label", data_home=home, seed=7, val_size=0.2, test_size=0.3)
    c = data.import_table(src, "c", "text", "label", data_home=home, seed=8, val_size=0.2, test_size=0.3)
    assert a.meta.sizes == {"train": 100, "val": 40, "test": 60}
    assert a.meta.data_sha256 == b.meta.data_sha256 != c.meta.data_sha256
    assert (a.meta.seed, a.meta.val_size, a.meta.test_size) == (7, 0.2, 0.3)


def test_split_column_without_validation_carves_it_from_train(tmp_path):
    frame = class_frame(2, 30)
    frame["part"] = ["test" if i % 3 == 0 else "TRAIN " for i in range(len(frame))]
    home = tmp_path / "home"
    result = data.import_table(write(frame, tmp_path / "t.csv"), "t", "text", "label", "part", data_home=home)
    ds = _load("t", home)
    assert ds.sizes() == {"train": 36, "val": 4, "test": 20} and "carved" in result.meta.split_rule
    test_ids = {f"row-{i + 1}" for i in range(len(frame)) if i % 3 == 0}
    assert set(ds.test.doc_ids) == test_ids and result.meta.test_size is None


def test_load_order_is_seeded_so_limit_train_samples_every_class(tmp_path):
    """The file is sorted by class; the training split loads in a seeded random order, so the first N
    (limit_train) are a sample of all classes, not the file's first class."""
    home = tmp_path / "home"
    data.import_table(write(class_frame(5, 40), tmp_path / "sorted.csv"), "s", "text", "label", data_home=home)
    small = data.load_corpus("s", home, limit_train=20)
    assert len(small.train) == 20 and len(set(small.train.labels.tolist())) >= 4
    assert small.test.doc_ids == _load("s", home).test.doc_ids


# ---- labels and ids -------------------------------------------------------------------------------------
def test_integer_labels_and_their_order(tmp_path):
    """Integer labels (also pandas' float column with gaps) are class names "2", "10"...: sorted
    numerically; 3, 3.0 and "3" are one class; a NaN label is missing (dropped)."""
    n = 60
    frame = pd.DataFrame({"text": [f"text number {i} about things" for i in range(n)],
                          "label": [[2, 10, 3][i % 3] for i in range(n)]})
    frame["label"] = frame["label"].astype(float)
    frame.loc[0, "label"] = np.nan
    home = tmp_path / "home"
    result = data.import_table(write(frame, tmp_path / "f.parquet"), "f", "text", "label", data_home=home)
    assert _load("f", home).label_names == ["2", "3", "10"] and result.meta.dropped_missing_label == 1
    jsonl = tmp_path / "mixed.jsonl"
    jsonl.write_text("".join(f'{{"text": "t{i} words here", "label": {v}}}\n'
                             for i, v in enumerate(['3', '3.0', '"3"', '" 4 "', '"4.00"', 'true', 'false'] * 5)))
    data.import_table(jsonl, "mixed", "text", "label", data_home=home, val_size=0.2)
    assert _load("mixed", home).label_names == ["3", "4", "false", "true"]
    frame.to_csv(tmp_path / "f.csv", index=False)  # pandas writes the float column as "2.0", "10.0", ""
    assert "10.0" in (tmp_path / "f.csv").read_text()
    data.import_table(tmp_path / "f.csv", "f-csv", "text", "label", data_home=home)
    assert _load("f-csv", home).label_names == ["2", "3", "10"]
    assert data.corpus_identity("f-csv", home).sha256 == data.corpus_identity("f", home).sha256


def test_id_column_is_kept(tmp_path):
    frame = class_frame(2, 20)
    frame["key"] = [f"doc/{i:03d}" for i in range(len(frame))]
    home = tmp_path / "home"
    data.import_table(write(frame, tmp_path / "t.jsonl"), "t", "text", "label", id="key", data_home=home)
    ds = _load("t", home)
    assert sorted(ds.train.doc_ids + ds.val.doc_ids + ds.test.doc_ids) == frame["key"].tolist()


# ---- versions, listing, 20 Newsgroups --------------------------------------------------------------------
def test_force_makes_a_new_version_with_the_same_data_checksum(tmp_path):
    home = tmp_path / "home"
    src = write(class_frame(2, 20), tmp_path / "t.csv")
    first = data.import_table(src, "t", "text", "label", data_home=home)
    second = data.import_table(src, "t", "text", "label", data_home=home, force=True)
    assert (first.meta.version, second.meta.version) == (1, 2)
    assert first.meta.data_sha256 == second.meta.data_sha256
    assert first.meta.source_sha256 == second.meta.source_sha256 == __import__("hashlib").sha256(
        src.read_bytes()).hexdigest()
    [row] = [r for r in data.list_corpora(home) if r.name == "t"]
    assert row.available and row.meta.version == 2 and row.sha256 == second.sha256


def test_list_and_stats_commands(tmp_path, capsys):
    home = tmp_path / "home"
    src = write(class_frame(3, 30), tmp_path / "t.csv")
    assert main(["data", "import-table", str(src), "--name", "topics", "--text", "text", "--label", "label",
                 "--data-home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "imported corpus 'topics' (version 1)" in out and "train 63 / val 9 / test 18" in out
    assert main(["data", "list", "--data-home", str(home)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("20newsgroups") and "not imported" in listing[0]
    assert listing[1].startswith("topics") and "90 docs, 3 classes" in listing[1]
    assert main(["data", "stats", "--corpus", "topics", "--data-home", str(home)]) == 0
    text = capsys.readouterr().out
    assert "corpus 'topics': 90 documents, 3 classes" in text and "clsawa" in text
    assert (home / "corpora" / "topics.stats.json").is_file()  # computed at import, for the dashboard


def test_20newsgroups_through_the_corpus_api_is_load_dataset(fixture_data_home):
    """The default corpus gives exactly load_dataset's documents, labels and ids, for both protocols."""
    for protocol in ("seed", "raw"):
        ds = data.load_corpus("20newsgroups", fixture_data_home, protocol=protocol, seed=3)
        ref = data.load_dataset(protocol, fixture_data_home, seed=3)
        for split in ("train", "val", "test"):
            a, b = ds.split(split), ref.split(split)
            assert a.texts == b.texts and a.doc_ids == b.doc_ids and (a.labels == b.labels).all()
        assert ds.label_names == ref.label_names and ds.protocol == protocol
    ref_sha = data.corpus_identity("20newsgroups", fixture_data_home).sha256
    from newsclf.data.cache import read_cache, to_arrays

    assert ref_sha == str(to_arrays(read_cache(fixture_data_home))["sha256"]) == ds.checksum
    [builtin] = [r for r in data.list_corpora(fixture_data_home) if r.builtin]
    assert builtin.available and builtin.sha256 == ref_sha


def test_corpus_stats_counts_duplicates_and_short_texts(tmp_path):
    frame = class_frame(2, 30)
    frame.loc[1, "text"] = frame.loc[0, "text"].upper() + "  "  # a duplicate up to case and spaces
    frame.loc[2, "text"] = "tiny"
    frame.loc[3, "text"] = frame.loc[0, "text"]
    frame.loc[3, "label"] = "class-001"  # the same text with another label
    home = tmp_path / "home"
    data.import_table(write(frame, tmp_path / "t.csv"), "t", "text", "label", data_home=home)
    stats = data.corpus_stats("t", home)
    dup = stats.duplicates
    assert sum(dup["within_split"].values()) + sum(dup["across_splits"].values()) >= 2
    assert dup["conflicting_labels"] == 1 and stats.short_docs["count"] == 1
    assert stats.class_counts["class-000"]["total"] == 29 and stats.n_docs == 60


def test_class_top_words_equals_the_20ng_top_words(fixture_data_home):
    """The faster counter gives newsclf.data.stats.top_words' exact result (the 20NG stats are untouched)."""
    from newsclf.data.corpus_stats import class_top_words
    from newsclf.data.stats import top_words

    ds = data.load_dataset("seed", fixture_data_home)
    assert class_top_words(ds.train, ds.label_names, 7) == top_words(ds.train, ds.label_names, 7)


def test_a_crafted_stats_cache_is_recomputed(tmp_path):
    import json

    home = tmp_path / "home"
    data.import_table(write(class_frame(2, 20), tmp_path / "t.csv"), "t", "text", "label", data_home=home)
    good = data.corpus_stats("t", home)
    cache = home / "corpora" / "t.stats.json"
    stored = json.loads(cache.read_text())
    stored["stats"]["class_balance"]["min_class"] = {"not": "text"}
    stored["stats"]["words_per_doc"].pop("q25")
    cache.write_text(json.dumps(stored))
    assert data.corpus_stats("t", home) == good
