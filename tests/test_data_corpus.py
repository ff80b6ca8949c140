"""newsclf.data.corpus and `newsclf data import`: archive/folder import on the synthetic fixture corpus."""
from __future__ import annotations

import argparse
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from sklearn.datasets import fetch_20newsgroups

from fixtures_corpus import make_fixture_tree, pack_archive
from newsclf import data
from newsclf.commands import data as data_cmd


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


