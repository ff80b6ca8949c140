"""newsclf.data and `newsclf data ...` on the synthetic fixture corpus (offline, seconds)."""
from __future__ import annotations

import argparse
import collections
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import fetch_20newsgroups

from fixtures_corpus import (QUOTE_MARKER, SIGNATURE_MARKER, CLASS_WORDS, make_fixture_archive,
                             make_fixture_tree, pack_archive, short_doc_ids)
from newsclf import data
from newsclf.commands import data as data_cmd

ROOT = Path(__file__).resolve().parents[1]
SEED_SIZES = {"train": 176, "val": 44, "test": 110}
RAW_SIZES = {"train": 192, "val": 48, "test": 120}
DOC_ID_RE = re.compile(r"^(train|test)/[a-z.-]+/\d+$")


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _good_home(tmp_path: Path, fixture_data_home: Path) -> Path:
    """A private data home with a copy (same bytes and mtime) of the fixture cache."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(fixture_data_home / data.CACHE_FILE, home / data.CACHE_FILE)
    return home


# ---- import -------------------------------------------------------------------------------------
def test_categories_and_cache_name_match_sklearn(fixture_data_home):
    from sklearn.datasets._base import _pkl_filepath

    assert list(data.CATEGORIES) == sorted(data.CATEGORIES) and len(data.CATEGORIES) == 20
    assert _pkl_filepath(str(fixture_data_home), "20news-bydate.pkz") == str(fixture_data_home / data.CACHE_FILE)
    assert data.load_dataset(data_home=fixture_data_home).label_names == list(data.CATEGORIES)


def test_import_then_plain_sklearn_reads_offline(fixture_data_home):
    train = fetch_20newsgroups(data_home=str(fixture_data_home), subset="train", download_if_missing=False)
    test = fetch_20newsgroups(data_home=str(fixture_data_home), subset="test", download_if_missing=False)
    assert (len(train.data), len(test.data)) == (240, 120)
    assert list(train.target_names) == list(data.CATEGORIES)
    assert any("na\u00efve" in text for text in train.data)  # decoded as latin-1
    assert data.corpus_available(fixture_data_home)
    assert sorted(p.name for p in fixture_data_home.iterdir() if p.name.startswith(".")) == []  # no temp left


def test_import_reports_progress(tmp_path, fixture_archive):
    calls = []
    path = data.import_archive(fixture_archive, tmp_path / "home", progress=lambda f, m: calls.append((f, m)))
    assert path == tmp_path / "home" / data.CACHE_FILE and path.is_file()
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(isinstance(m, str) for _, m in calls)


def test_import_from_extracted_folder_equals_archive(tmp_path, fixture_data_home):
    root = make_fixture_tree(tmp_path / "tree")
    data.import_archive(root, tmp_path / "home")
    a = data.load_dataset(data_home=tmp_path / "home")
    b = data.load_dataset(data_home=fixture_data_home)
    assert a.val.doc_ids == b.val.doc_ids and a.test.texts == b.test.texts


def _bad_source(kind: str, tmp_path: Path, archive: Path) -> Path:
    if kind == "missing":
        return tmp_path / "nope.tar.gz"
    if kind == "not_a_tar":
        (tmp_path / "x.tar.gz").write_bytes(b"this is not an archive" * 100)
        return tmp_path / "x.tar.gz"
    if kind == "corrupt_gzip":
        raw = bytearray(archive.read_bytes())
        raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)
        (tmp_path / "c.tar.gz").write_bytes(bytes(raw))
        return tmp_path / "c.tar.gz"
    if kind == "truncated":
        (tmp_path / "t.tar.gz").write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
        return tmp_path / "t.tar.gz"
    root = make_fixture_tree(tmp_path / "tree", 3, 2)
    if kind == "missing_class":
        shutil.rmtree(root / data.TEST_FOLDER / "sci.space")
    elif kind == "extra_folder":
        (root / data.TRAIN_FOLDER / "alt.extra").mkdir()
        (root / data.TRAIN_FOLDER / "alt.extra" / "1").write_text("x")
    elif kind == "empty_class":
        for f in (root / data.TRAIN_FOLDER / "rec.autos").iterdir():
            f.unlink()
    elif kind == "no_test":
        shutil.rmtree(root / data.TEST_FOLDER)
    elif kind == "folder_no_test":
        shutil.rmtree(root / data.TEST_FOLDER)
        return root
    return pack_archive(root, tmp_path / f"{kind}.tar.gz")


@pytest.mark.parametrize("kind", ["missing", "not_a_tar", "corrupt_gzip", "truncated", "missing_class",
                                  "extra_folder", "empty_class", "no_test", "folder_no_test"])
def test_bad_import_raises_and_keeps_good_cache(kind, tmp_path, fixture_data_home, fixture_archive):
    home = _good_home(tmp_path, fixture_data_home)
    before = _snapshot(home / data.CACHE_FILE)
    with pytest.raises(data.DataError) as err:
        data.import_archive(_bad_source(kind, tmp_path, fixture_archive), home)
    assert str(err.value).startswith("import:")
    assert not isinstance(err.value, data.DataMissingError)
    assert _snapshot(home / data.CACHE_FILE) == before
    assert sorted(p.name for p in home.iterdir()) == [data.CACHE_FILE]  # temp dirs cleaned


def test_unsafe_tar_member_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(data.DataError):
        data.import_archive(archive, tmp_path / "home")
    assert not (tmp_path / "escaped.txt").exists()


def test_fetch_failure_names_import_command(tmp_path, monkeypatch):
    import sklearn.datasets

    def offline(**kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", offline)
    with pytest.raises(data.DataError, match=r"python -m newsclf data import"):
        data.fetch_corpus(tmp_path / "home")


# ---- missing / corrupt data -----------------------------------------------------------------------
def test_missing_data_names_both_commands(tmp_path, monkeypatch):
    home = tmp_path / "empty"
    monkeypatch.setenv("NEWSCLF_DATA_HOME", str(home))
    assert not data.corpus_available()
    for call in (lambda: data.load_dataset(), lambda: data.compute_stats(),
                 lambda: data.get_documents(["train/sci.space/1"]), lambda: data.sample_documents(0)):
        with pytest.raises(data.DataMissingError) as err:
            call()
        assert "python -m newsclf data fetch" in str(err.value)
        assert "python -m newsclf data import PATH/TO/20news-bydate.tar.gz" in str(err.value)
    assert not home.exists()  # looking never creates the data home


def test_corrupt_cache_is_a_data_error(tmp_path):
    (tmp_path / data.CACHE_FILE).write_bytes(b"garbage")
    with pytest.raises(data.DataError, match="unreadable") as err:
        data.load_dataset(data_home=tmp_path)
    assert not isinstance(err.value, data.DataMissingError)


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


# ---- stats ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uneven_home(tmp_path_factory) -> Path:
    """A corpus whose classes differ in size (class i has i % 4 extra train posts)."""
    tmp = tmp_path_factory.mktemp("uneven")
    home = tmp / "home"
    data.import_archive(make_fixture_archive(tmp, uneven=True), home)
    return home


def _expected_stats(home: Path) -> dict:
    """The figures recomputed here with sklearn + statistics, independently of newsclf.data."""
    bunch = fetch_20newsgroups(data_home=str(home), subset="all", remove=("headers", "footers", "quotes"),
                               download_if_missing=False)
    words = [len(t.split()) for t in bunch.data]
    counts = collections.Counter(bunch.target_names[y] for y in bunch.target)
    return dict(n_docs=len(bunch.data), total_words=sum(words), total_chars=sum(map(len, bunch.data)),
                counts=counts, words=words)


def test_stats_exact_on_fixture(uneven_home):
    stats = data.compute_stats(uneven_home, top_k=5)
    d = stats.to_dict()
    exp = _expected_stats(uneven_home)
    assert set(d) == {"protocol", "n_docs", "total_words", "total_chars", "class_counts", "class_count_stats",
                      "words_per_doc", "splits", "top_words"}
    assert (d["n_docs"], d["total_words"], d["total_chars"]) == (exp["n_docs"], exp["total_words"], exp["total_chars"])
    assert d["n_docs"] == sum(12 + i % 4 + 6 for i in range(20))
    assert d["class_counts"] == {name: exp["counts"][name] for name in data.CATEGORIES}
    values = list(exp["counts"].values())
    ccs = d["class_count_stats"]
    assert (ccs["min"], ccs["max"], ccs["min_class"], ccs["max_class"]) == (18, 21, "alt.atheism", "comp.sys.ibm.pc.hardware")
    assert ccs["mean"] == pytest.approx(statistics.mean(values)) and ccs["std"] == pytest.approx(statistics.stdev(values))
    w = exp["words"]
    q = statistics.quantiles(w, n=4, method="inclusive")  # = numpy's linear method
    assert d["words_per_doc"] == pytest.approx(dict(mean=statistics.mean(w), median=statistics.median(w),
                                                    std=statistics.stdev(w), min=min(w), max=max(w), q25=q[0], q75=q[2]))
    assert d["splits"] == data.load_dataset(data_home=uneven_home).sizes()
    assert json.loads(json.dumps(d)) == d


def test_stats_top_words_and_json_cache(fixture_data_home):
    stats = data.compute_stats(fixture_data_home, top_k=3)
    for name, pairs in stats.top_words.items():
        assert len(pairs) == 3 and pairs[0][0] in CLASS_WORDS[name]
        assert [c for _, c in pairs] == sorted((c for _, c in pairs), reverse=True)
    cached = fixture_data_home / "newsclf_stats_seed.json"
    assert cached.is_file()
    data.clear_caches()
    assert data.compute_stats(fixture_data_home, top_k=3) == stats  # read back from the JSON cache
    raw = data.compute_stats(fixture_data_home, protocol="raw")
    assert raw.protocol == "raw" and raw.total_words > stats.total_words and raw.splits == RAW_SIZES


# ---- CLI ------------------------------------------------------------------------------------------
def _run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="newsclf")
    data_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_commands_in_process(tmp_path, fixture_archive, fixture_data_home, capsys):
    assert _run_command(["data", "import", str(fixture_archive), "--data-home", str(tmp_path / "h")]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "h" / data.CACHE_FILE) in out and "train 176, val 44, test 110" in out
    assert _run_command(["data", "stats", "--data-home", str(fixture_data_home)]) == 0
    out = capsys.readouterr().out
    assert "documents per class" in out and "sci.space" in out and "top words" in out
    assert _run_command(["data", "stats", "--json", "--protocol", "raw", "--data-home", str(fixture_data_home)]) == 0
    assert json.loads(capsys.readouterr().out) == data.compute_stats(fixture_data_home, "raw").to_dict()
    with pytest.raises(data.DataMissingError):
        _run_command(["data", "stats", "--data-home", str(tmp_path / "none")])


def _cli_can_start() -> str:
    proc = subprocess.run([sys.executable, "-c", "import newsclf.cli as c; c.build_parser()"], cwd=ROOT,
                          capture_output=True, text=True)
    return "" if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


def test_cli_stats_json_subprocess(fixture_data_home):
    reason = _cli_can_start()
    if reason:
        pytest.skip(f"`python -m newsclf` cannot start yet (other command modules missing): {reason}")
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(fixture_data_home)}
    proc = subprocess.run([sys.executable, "-m", "newsclf", "data", "stats", "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == data.compute_stats(fixture_data_home).to_dict()
    env["NEWSCLF_DATA_HOME"] = str(fixture_data_home / "missing")
    proc = subprocess.run([sys.executable, "-m", "newsclf", "data", "stats"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and "data fetch" in proc.stderr


def test_no_streamlit_or_torch(fixture_data_home):
    code = ("import sys, newsclf.data as d, newsclf.commands.data; d.load_dataset(); d.compute_stats(); "
            "bad = [m for m in ('streamlit', 'torch') if m in sys.modules]; assert not bad, bad")
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(fixture_data_home)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
