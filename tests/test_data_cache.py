"""newsclf.data.cache: newsclf's own corpus cache, equal to sklearn's output and never a pickle.

The data home is untrusted (a shared drive): a crafted sklearn .pkz must never be unpickled, a
crafted .npz must be refused, a link must not be followed. The fixture corpus is trusted test
data, so plain sklearn may read its .pkz here to give the reference figures.
"""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import fetch_20newsgroups

from newsclf import data
from newsclf.data.cache import read_cache, to_arrays
from newsclf.data.dataset import REMOVE, load_subset
from tests.helpers.corpus import make_fixture_archive

ROOT = Path(__file__).resolve().parents[1]


class _Boom:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted_pkz(home: Path, marker: Path) -> Path:
    """A 20news-bydate_py3.pkz as sklearn reads it (zlib-compressed pickle) whose loading creates `marker`."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / data.SKLEARN_CACHE_FILE
    path.write_bytes(zlib.compress(pickle.dumps(_Boom(marker))))
    return path


def test_the_crafted_pkz_is_live(tmp_path):
    """The attack file works: whoever unpickles it creates the marker (so its absence below means something)."""
    marker = tmp_path / "LIVE"
    pkz = _crafted_pkz(tmp_path / "h", marker)
    pickle.loads(zlib.decompress(pkz.read_bytes()))
    assert marker.exists()


# ---- the same documents, texts and order as sklearn ----------------------------------------------
@pytest.fixture(scope="module")
def uneven_home(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("uneven_cache")
    data.import_archive(make_fixture_archive(tmp, uneven=True, seed=3), tmp / "home")
    return tmp / "home"


def _assert_same_as_sklearn(home: Path) -> None:
    for protocol in ("seed", "raw"):
        for subset in ("train", "test"):
            ref = fetch_20newsgroups(data_home=str(home), subset=subset, remove=REMOVE[protocol],
                                     download_if_missing=False)
            ours = load_subset(str(home), data.corpus.cache_key(home), subset, protocol)
            ref_ids = [data.cache.doc_id(f) for f in ref.filenames]
            assert ours.doc_ids == ref_ids
            assert ours.texts == list(ref.data)
            assert ours.labels.dtype == np.int64 and ours.labels.tolist() == ref.target.tolist()
            assert ours.label_names == list(ref.target_names)


def test_load_subset_equals_fetch_20newsgroups(fixture_data_home, uneven_home):
    _assert_same_as_sklearn(fixture_data_home)
    _assert_same_as_sklearn(uneven_home)


def _fake_download(archive: Path):
    """Stands in for sklearn's _fetch_remote: 'downloads' the archive by copying it (checksum skipped)."""
    def fetch_remote(remote, dirname=None, n_retries=3, delay=1):
        target = Path(dirname) / remote.filename
        shutil.copyfile(archive, target)
        return str(target)
    return fetch_remote


def test_fetch_uses_a_fresh_folder_and_matches_sklearns_own_download(tmp_path, fixture_archive, monkeypatch):
    """fetch_corpus goes through sklearn's real download code (extract, load_files, its own .pkz) offline."""
    import sklearn.datasets._twenty_newsgroups as tng

    monkeypatch.setattr(tng, "_fetch_remote", _fake_download(fixture_archive))
    marker = tmp_path / "PWNED"
    home = tmp_path / "home"
    _crafted_pkz(home, marker)  # an attacker's file already in the (shared) data home
    calls = []
    path = data.fetch_corpus(home, progress=lambda f, m: calls.append(f))
    assert not marker.exists() and path == home / data.CACHE_FILE and calls[-1] == 1.0
    assert data.load_dataset(data_home=home).sizes() == {"train": 176, "val": 44, "test": 110}
    assert pickle.loads(zlib.decompress((home / data.SKLEARN_CACHE_FILE).read_bytes()))  # replaced by a real one
    assert sorted(p.name for p in home.iterdir()) == sorted([data.CACHE_FILE, data.SKLEARN_CACHE_FILE])
    sk_home = tmp_path / "sklearn_home"  # sklearn's own download path writes its own .pkz here
    fetch_20newsgroups(data_home=str(sk_home), subset="train", download_if_missing=True)
    for protocol in ("seed", "raw"):
        for subset in ("train", "test"):
            ref = fetch_20newsgroups(data_home=str(sk_home), subset=subset, remove=REMOVE[protocol])
            ours = load_subset(str(home), data.corpus.cache_key(home), subset, protocol)
            assert ours.doc_ids == [data.cache.doc_id(f) for f in ref.filenames] and ours.texts == list(ref.data)


# ---- a crafted sklearn pickle is never loaded -------------------------------------------------------
def test_pkz_only_home_is_not_imported_and_never_unpickled(tmp_path):
    marker = tmp_path / "PWNED"
    home = tmp_path / "home"
    _crafted_pkz(home, marker)
    assert not data.corpus_available(home)
    for call in (lambda: data.load_dataset(data_home=home), lambda: data.compute_stats(home),
                 lambda: data.get_documents(["train/sci.space/1"], data_home=home),
                 lambda: data.sample_documents(0, data_home=home), lambda: data.precompute_stats(home)):
        with pytest.raises(data.DataMissingError) as err:
            call()
        message = str(err.value)
        assert len(message.splitlines()) == 1 and data.SKLEARN_CACHE_FILE in message
        assert "re-import" in message and "python -m newsclf data import PATH/TO/20news-bydate.tar.gz" in message
    assert not marker.exists()
    assert sorted(p.name for p in home.iterdir()) == [data.SKLEARN_CACHE_FILE]


def test_a_crafted_pkz_beside_a_good_cache_is_never_loaded(tmp_path, fixture_data_home):
    marker = tmp_path / "PWNED"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(fixture_data_home / data.CACHE_FILE, home / data.CACHE_FILE)
    _crafted_pkz(home, marker)
    assert data.corpus_available(home)
    assert data.load_dataset(data_home=home).sizes() == {"train": 176, "val": 44, "test": 110}
    assert data.compute_stats(home) == data.compute_stats(fixture_data_home)
    assert len(data.get_documents(data.load_dataset(data_home=home).test.doc_ids[:3], data_home=home)) == 3
    assert len(data.sample_documents("sci.space", 2, data_home=home)) == 2
    assert not marker.exists()


@pytest.mark.parametrize("with_good_cache", [False, True])
def test_cli_data_stats_never_unpickles(with_good_cache, tmp_path, fixture_data_home):
    marker = tmp_path / "PWNED"
    home = tmp_path / "home"
    _crafted_pkz(home, marker)
    if with_good_cache:
        shutil.copy2(fixture_data_home / data.CACHE_FILE, home / data.CACHE_FILE)
    env = {**os.environ, "NEWSCLF_DATA_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "newsclf", "data", "stats"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert not marker.exists()
    if with_good_cache:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 2 and proc.stderr.startswith("error:") and len(proc.stderr.splitlines()) == 1
        assert "re-import" in proc.stderr


# ---- a crafted or damaged newsclf cache is refused in one line ---------------------------------------
def _good_arrays(fixture_data_home: Path) -> dict[str, np.ndarray]:
    return to_arrays(read_cache(fixture_data_home))


def _refused(home: Path, match: str = "damaged") -> str:
    assert data.corpus_available(home) in (True, False)  # never raises, never loads
    with pytest.raises(data.DataError, match=match) as err:
        data.load_dataset(data_home=home)
    assert not isinstance(err.value, data.DataMissingError)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and "re-import" in message
    return message


def test_object_array_in_the_npz_is_refused(tmp_path, fixture_data_home):
    marker = tmp_path / "PWNED"
    arrays = _good_arrays(fixture_data_home)
    arrays["doc_ids"] = np.array([_Boom(marker)] * len(arrays["doc_ids"]), dtype=object)
    home = tmp_path / "home"
    home.mkdir()
    np.savez(home / data.CACHE_FILE, **arrays)  # numpy pickles object arrays
    assert "Python objects" in _refused(home)
    assert not marker.exists()


def test_a_pickle_named_npz_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    home = tmp_path / "home"
    home.mkdir()
    (home / data.CACHE_FILE).write_bytes(pickle.dumps(_Boom(marker)))
    _refused(home)
    np.save(home / "x.npy", np.array([_Boom(marker)], dtype=object))  # a pickled .npy under the cache's name
    os.replace(home / "x.npy", home / data.CACHE_FILE)
    _refused(home)
    assert not marker.exists()


@pytest.mark.parametrize("edit", ["garbage", "plain_npy", "checksum", "format", "format_array", "missing_key",
                                  "extra_key", "shape", "dtype", "label_range"])
def test_damaged_cache_is_refused(edit, tmp_path, fixture_data_home):
    home = tmp_path / "home"
    home.mkdir()
    arrays = _good_arrays(fixture_data_home)
    if edit == "garbage":
        (home / data.CACHE_FILE).write_bytes(b"garbage" * 100)
    elif edit == "plain_npy":  # np.load returns an array, not an archive
        np.save(home / "x.npy", np.arange(10))
        os.replace(home / "x.npy", home / data.CACHE_FILE)
    else:
        if edit == "checksum":
            arrays["text"] = arrays["text"].copy()
            arrays["text"][100] ^= 1
        elif edit == "format":
            arrays["format"] = np.array(99, dtype=np.int64)
        elif edit == "format_array":
            arrays["format"] = np.arange(10_000)
        elif edit == "missing_key":
            del arrays["split"]
        elif edit == "extra_key":
            arrays["more"] = np.arange(3)
        elif edit == "dtype":
            arrays["target"] = arrays["target"].astype(">i8")  # same values, foreign byte order
        elif edit == "shape":
            arrays["target"] = arrays["target"][:-1]
        elif edit == "label_range":
            arrays["target"] = arrays["target"] + 20
            arrays["sha256"] = np.array(data.cache.content_digest(arrays))  # a consistent but foreign file
        np.savez(home / data.CACHE_FILE, **arrays)
    _refused(home)


def test_reimport_over_a_damaged_cache(tmp_path, fixture_archive):
    home = tmp_path / "home"
    home.mkdir()
    (home / data.CACHE_FILE).write_bytes(b"garbage")
    _refused(home)
    data.import_archive(fixture_archive, home)
    assert data.load_dataset(data_home=home).sizes()["test"] == 110


# ---- links are never followed out of the data home ---------------------------------------------------
def test_symlinked_cache_is_refused(tmp_path, fixture_data_home):
    home = tmp_path / "home"
    home.mkdir()
    (home / data.CACHE_FILE).symlink_to(fixture_data_home / data.CACHE_FILE)  # a good file, elsewhere
    assert not data.corpus_available(home)
    for call in (lambda: data.load_dataset(data_home=home), lambda: data.compute_stats(home),
                 lambda: data.get_documents(["x"], data_home=home)):
        with pytest.raises(data.DataError, match="symbolic link") as err:
            call()
        assert len(str(err.value).splitlines()) == 1
    with pytest.raises(data.DataError, match="symbolic link"):
        read_cache(home)  # the reader itself refuses too (O_NOFOLLOW), not only the key


def test_import_replaces_a_link_instead_of_writing_through_it(tmp_path, fixture_archive):
    outside = tmp_path / "outside.npz"
    outside.write_bytes(b"keep me")
    home = tmp_path / "home"
    home.mkdir()
    (home / data.CACHE_FILE).symlink_to(outside)
    data.import_archive(fixture_archive, home)
    assert outside.read_bytes() == b"keep me" and not (home / data.CACHE_FILE).is_symlink()


def test_symlinked_stats_json_is_not_followed(tmp_path, fixture_data_home):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(fixture_data_home / data.CACHE_FILE, home / data.CACHE_FILE)
    real = data.compute_stats(home)
    stats_file = home / data.STATS_FILE.format(protocol="seed")
    forged = stats_file.read_text().replace(f'"n_docs": {real.n_docs}', '"n_docs": 1')
    assert forged != stats_file.read_text()
    outside = tmp_path / "forged.json"
    outside.write_text(forged)
    stats_file.unlink()
    stats_file.symlink_to(outside)
    data.clear_caches()
    assert data.compute_stats(home) == real
    assert outside.read_text() == forged and not stats_file.is_symlink()


def test_cache_is_written_atomically_and_verified(tmp_path, fixture_archive, monkeypatch):
    """A write that does not read back leaves the earlier cache untouched and no temp file behind."""
    home = tmp_path / "home"
    data.import_archive(fixture_archive, home)
    before = (home / data.CACHE_FILE).read_bytes()
    monkeypatch.setattr(data.cache, "_same", lambda a, b: False)
    with pytest.raises(data.DataError, match="does not read back"):
        data.import_archive(fixture_archive, home)
    assert (home / data.CACHE_FILE).read_bytes() == before
    assert not [p for p in home.iterdir() if p.name.startswith(".")]


def test_cli_data_fetch_installs_like_an_import(tmp_path, fixture_archive, monkeypatch, capsys):
    import sklearn.datasets._twenty_newsgroups as tng

    from newsclf import cli

    monkeypatch.setattr(tng, "_fetch_remote", _fake_download(fixture_archive))
    home = tmp_path / "home"
    assert cli.main(["data", "fetch", "--data-home", str(home)]) == 0
    assert "train 176, val 44, test 110" in capsys.readouterr().out
    for protocol in ("seed", "raw"):  # precomputed for the dashboard, as after an import
        assert (home / data.STATS_FILE.format(protocol=protocol)).is_file()
    imported = tmp_path / "imported"
    data.import_archive(fixture_archive, imported)
    assert data.load_dataset(data_home=home).test.texts == data.load_dataset(data_home=imported).test.texts
    assert data.compute_stats(home) == data.compute_stats(imported)
