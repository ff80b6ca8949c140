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

from tests.helpers.corpus import make_fixture_tree, pack_archive
from newsclf import data
from newsclf.commands import data as data_cmd


CACHES = sorted([data.CACHE_FILE, data.SKLEARN_CACHE_FILE])


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _good_home(tmp_path: Path, fixture_data_home: Path) -> Path:
    """A private data home with a copy (same bytes and mtime) of the fixture caches (newsclf's and sklearn's)."""
    home = tmp_path / "home"
    home.mkdir()
    for name in CACHES:
        shutil.copy2(fixture_data_home / name, home / name)
    return home


# ---- import -------------------------------------------------------------------------------------
def test_categories_and_cache_name_match_sklearn(fixture_data_home):
    from sklearn.datasets._base import _pkl_filepath

    assert list(data.CATEGORIES) == sorted(data.CATEGORIES) and len(data.CATEGORIES) == 20
    assert _pkl_filepath(str(fixture_data_home), "20news-bydate.pkz") == str(fixture_data_home / data.SKLEARN_CACHE_FILE)
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
    assert _snapshot(home / data.SKLEARN_CACHE_FILE) == _snapshot(fixture_data_home / data.SKLEARN_CACHE_FILE)
    assert sorted(p.name for p in home.iterdir()) == CACHES  # temp dirs cleaned


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
    with pytest.raises(data.DataError, match="is damaged .*re-import") as err:
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




# ---- a damaged archive never becomes the corpus (each of these imported a partial corpus before) ----
FIXTURE_COUNTS = {"train": {name: 12 for name in data.CATEGORIES}, "test": {name: 6 for name in data.CATEGORIES}}


def _flipped(archive: Path, at: float, out: Path) -> Path:
    raw = bytearray(archive.read_bytes())
    pos = int(len(raw) * at)
    raw[pos:pos + 8] = bytes(b ^ 0xFF for b in raw[pos:pos + 8])
    out.write_bytes(bytes(raw))
    return out


def _cut_at_member(archive: Path, keep_files: int, out: Path) -> Path:
    """A VALID gzip of the fixture tar cut after `keep_files` files (a clean member boundary)."""
    import gzip

    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        files = [m for m in members if m.isfile()]
        cut = members[members.index(files[keep_files])].offset  # header of the first dropped file
        tar.fileobj.seek(0)
    raw = gzip.decompress(archive.read_bytes())[:cut]
    out.write_bytes(gzip.compress(raw + bytes(1024)))  # plus a proper end-of-archive marker
    return out


def _cli_import(source: Path, home: Path, capsys) -> tuple[int, str]:
    from newsclf import cli

    try:
        code = cli.main(["data", "import", str(source), "--data-home", str(home)])
    except SystemExit as exc:  # pragma: no cover - parser problems
        code = exc.code
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("[")]  # progress
    return code, "\n".join(lines)


@pytest.mark.parametrize("at", [0.985, 0.995, 0.5, 0.1])
def test_flipped_bytes_are_damage_and_keep_the_good_cache(at, tmp_path, fixture_data_home, fixture_archive, capsys):
    home = _good_home(tmp_path, fixture_data_home)
    before = _snapshot(home / data.CACHE_FILE)
    bad = _flipped(fixture_archive, at, tmp_path / "flipped.tar.gz")
    code, err = _cli_import(bad, home, capsys)
    assert code == 2 and err.startswith("error: import: the archive flipped.tar.gz is damaged (")
    assert err.endswith("download it again") and len(err.splitlines()) == 1
    assert "not the 20news-bydate corpus" not in err and "missing" not in err
    assert _snapshot(home / data.CACHE_FILE) == before
    assert sorted(p.name for p in home.iterdir()) == CACHES


@pytest.mark.parametrize("keep", [0.999, 0.9, 0.3])
def test_cut_gzip_is_damage(keep, tmp_path, fixture_data_home, fixture_archive):
    home = _good_home(tmp_path, fixture_data_home)
    before = _snapshot(home / data.CACHE_FILE)
    raw = fixture_archive.read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(data.DataError, match=r"^import: the archive cut.tar.gz is damaged \(.*download it again$"):
        data.import_archive(tmp_path / "cut.tar.gz", home)
    assert _snapshot(home / data.CACHE_FILE) == before


def test_valid_gzip_of_a_cut_tar_fails_the_count_check(tmp_path, fixture_data_home, fixture_archive):
    home = _good_home(tmp_path, fixture_data_home)
    before = _snapshot(home / data.CACHE_FILE)
    cut = _cut_at_member(fixture_archive, 120 + 220, tmp_path / "cut.tar.gz")  # test/ comes first: all 120, 220 train
    with pytest.raises(data.DataError, match=r"damaged or incomplete: 220 of 240 train documents \(talk.politics.misc "
                                             r"4 of 12, talk.religion.misc 0 of 12\); download it again$"):
        data.import_archive(cut, home, expected=FIXTURE_COUNTS)
    assert _snapshot(home / data.CACHE_FILE) == before
    data.import_archive(fixture_archive, tmp_path / "ok", expected=FIXTURE_COUNTS)  # the whole one passes


def test_garbage_after_a_bad_tar_header_is_damage(tmp_path, fixture_archive):
    """tarfile stops quietly at a bad header; the data after it must then be only zero padding."""
    import gzip

    raw = bytearray(gzip.decompress(fixture_archive.read_bytes()))
    with tarfile.open(fixture_archive) as tar:
        header = [m for m in tar.getmembers() if m.isfile()][-5].offset
    raw[header + 148:header + 156] = b"garbage!"  # the header checksum field
    (tmp_path / "h.tar.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(data.DataError, match="is damaged .*stops making sense"):
        data.import_archive(tmp_path / "h.tar.gz", tmp_path / "home", expected=None)


def _bydate_named_tree(root: Path, drop_test: int = 0) -> Path:
    """The fixture tree with its files renamed to real 20news-bydate article numbers of their folder."""
    from newsclf.data.archive import BYDATE

    make_fixture_tree(root)
    for folder, split in data.SPLIT_FOLDERS.items():
        for name in data.CATEGORIES:
            lo = BYDATE[split][name][1]
            for i, f in enumerate(sorted((root / folder / name).iterdir())):
                f.rename(f.with_name(str(lo + i)))
    victims = sorted((root / data.TEST_FOLDER / "sci.med").iterdir())[:drop_test]
    for f in victims:
        f.unlink()
    return root


def test_product_path_enforces_the_real_counts(tmp_path, fixture_data_home, capsys):
    """Named like 20news-bydate => must hold all 11,314 / 7,532 documents (no flag can be forgotten)."""
    home = _good_home(tmp_path, fixture_data_home)
    before = _snapshot(home / data.CACHE_FILE)
    archive = pack_archive(_bydate_named_tree(tmp_path / "tree"), tmp_path / "20news-bydate.tar.gz")
    code, err = _cli_import(archive, home, capsys)
    assert code == 2 and "damaged or incomplete: 240 of 11,314 train documents (alt.atheism 12 of 480" in err
    assert _snapshot(home / data.CACHE_FILE) == before


def test_looks_like_bydate():
    from newsclf.data.archive import BYDATE, looks_like_bydate

    real = {s: {n: {str(lo + i): b"" for i in range(3)} for n, (_, lo, _) in c.items()} for s, c in BYDATE.items()}
    assert looks_like_bydate(real)
    fixture = {s: {n: {str(10000 + i): b"" for i in range(3)} for n in data.CATEGORIES} for s in ("train", "test")}
    assert not looks_like_bydate(fixture)


# ---- links are never followed --------------------------------------------------------------------
def test_symlink_in_folder_is_refused(tmp_path, fixture_data_home):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    root = make_fixture_tree(tmp_path / "tree")
    (root / data.TRAIN_FOLDER / "sci.space" / "99999").symlink_to(secret)
    home = _good_home(tmp_path, fixture_data_home)
    before = _snapshot(home / data.CACHE_FILE)
    with pytest.raises(data.DataError, match="symbolic link; refused"):
        data.import_archive(root, home)
    assert _snapshot(home / data.CACHE_FILE) == before


def test_symlinked_class_folder_is_refused(tmp_path):
    root = make_fixture_tree(tmp_path / "tree")
    outside = tmp_path / "outside"
    shutil.move(root / data.TEST_FOLDER / "rec.autos", outside)
    (root / data.TEST_FOLDER / "rec.autos").symlink_to(outside, target_is_directory=True)
    with pytest.raises(data.DataError, match="rec.autos is a symbolic link; refused"):
        data.import_archive(root, tmp_path / "home")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_link_member_in_archive_is_refused(kind, tmp_path):
    root = make_fixture_tree(tmp_path / "tree")
    archive = pack_archive(root, tmp_path / "a.tar.gz")
    with tarfile.open(archive, "r:gz") as src, tarfile.open(tmp_path / "l.tar.gz", "w:gz") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        link = tarfile.TarInfo(f"{data.TRAIN_FOLDER}/sci.space/99999")
        link.type, link.linkname = kind, "/etc/passwd"
        dst.addfile(link)
    with pytest.raises(data.DataError, match="link or special file"):
        data.import_archive(tmp_path / "l.tar.gz", tmp_path / "home")


def test_cache_equals_sklearn_load_files(tmp_path, fixture_data_home):
    """The in-memory import holds (and writes for sklearn) what sklearn's own load_files would."""
    from sklearn.datasets import load_files

    from newsclf.data.archive import read_source
    from newsclf.data.cache import build_raw, read_cache
    from newsclf.data.corpus import sklearn_cache

    root = make_fixture_tree(tmp_path / "tree")
    raw = build_raw(read_source(root))
    ours = sklearn_cache(raw, tmp_path)
    stored = read_cache(fixture_data_home)
    for folder, split in data.SPLIT_FOLDERS.items():
        ref = load_files(str(root / folder), encoding="latin1")
        assert ours[split].data == ref.data and ours[split].target_names == ref.target_names
        assert ours[split].target.dtype == ref.target.dtype and (ours[split].target == ref.target).all()
        assert [f.split("/")[-2:] for f in ours[split].filenames] == [f.split("/")[-2:] for f in ref.filenames]
        assert sorted(ours[split].keys()) == sorted(ref.keys())
        assert stored.subset(split).texts == ref.data and stored.subset(split).target.tolist() == ref.target.tolist()
        assert stored.subset(split).doc_ids == [f"{split}/" + "/".join(f.split("/")[-2:]) for f in ref.filenames]
