"""Small inputs never cost huge memory (issue 21, class 7): sizes and checksums are checked before anything
is inflated or parsed, and what must be read is streamed.

Each case is an input under 10 MB built to inflate or expand (gzip/zip bombs without newlines, a sparse
2 GB file, .npz members declaring gigabytes, a tar bomb, megabytes of tiny JSON events, a huge upload)
and fed to the newsclf function that reads it, in a fresh subprocess; the peak RSS growth is measured
(tests/helpers/memory.py) and must stay under the issue's ~200 MB. Every case must also be refused (or,
for the metrics file and the upload, read with bounded memory).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers.memory import npy_header, peak_growth, write_bomb_member

pytestmark = pytest.mark.timeout(600)
LIMIT_MB = 200
BOMB = 256 << 20  # what each bomb inflates to (already 25x the 10 MB of the rule)
SMALL = 10 << 20


def _gzip_stream(path: Path, total: int, fill: bytes) -> None:
    chunk = fill * (1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        for _ in range(total // len(chunk)):
            fh.write(chunk)


def _vectors_gz(tmp: Path) -> Path:
    path = tmp / "bomb.txt.gz"
    _gzip_stream(path, BOMB, b"\0")
    return path


def _vectors_gz_newlines(tmp: Path) -> Path:
    path = tmp / "blank.txt.gz"
    _gzip_stream(path, BOMB, b"\n")
    return path


def _vectors_gz_long_vector(tmp: Path) -> Path:
    path = tmp / "long.vec.gz"
    _gzip_stream(path, BOMB, b"0.5 ")
    return path


def _vectors_zip(tmp: Path) -> Path:
    path = tmp / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        write_bomb_member(zf, "glove.6B.300d.txt", b"the ", BOMB, b"0")
    return path


def _vectors_sparse(tmp: Path) -> Path:
    path = tmp / "sparse.txt"
    with open(path, "wb") as fh:
        fh.truncate(2 << 30)  # 2 GB that take no disk: all zeros, no newline
    return path


EMBEDDINGS = {"gzip-no-newline": _vectors_gz, "gzip-blank-lines": _vectors_gz_newlines,
              "gzip-one-endless-vector": _vectors_gz_long_vector, "zip-no-newline": _vectors_zip,
              "sparse-2GB-text": _vectors_sparse}


@pytest.mark.parametrize("case", sorted(EMBEDDINGS))
def test_embeddings_files_are_read_with_bounded_memory(case, tmp_path):
    path = EMBEDDINGS[case](tmp_path)
    assert path.stat().st_blocks * 512 < SMALL
    growth, outcome = peak_growth("from newsclf import embeddings as emb",
                                  f"emb.check({str(path)!r}, None)")
    assert outcome.startswith("refused EmbeddingsError"), outcome
    assert growth < LIMIT_MB, f"{case}: {growth:.0f} MB"


def _npz(path: Path, members: dict[str, tuple[str, tuple, int]], bomb: str, stored: bool = False) -> Path:
    """An .npz whose member `bomb` declares `total` bytes of zeros after a true header (deflated), or a
    header that lies about its size (stored)."""
    import numpy as np

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf:
        for key, (dtype, shape, _) in members.items():
            name = f"{key}.npy"
            if key == bomb and not stored:
                write_bomb_member(zf, name, npy_header(dtype, shape), int(np.prod(shape)) * np.dtype(dtype).itemsize)
            elif key == bomb:
                zf.writestr(name, npy_header(dtype, shape) + b"\0" * 64)  # claims far more than it holds
            else:
                buf = io.BytesIO()
                np.save(buf, np.zeros(shape, dtype=dtype))
                zf.writestr(name, buf.getvalue())
    return path


def _corpus(tmp: Path, stored: bool) -> Path:
    home = tmp / "home"
    home.mkdir()
    members = {"format": ("<i8", (), 0), "sha256": ("<U64", (), 0), "text": ("|u1", (BOMB,), 0),
               "offsets": ("<i8", (2,), 0), "target": ("<i8", (1,), 0), "split": ("|u1", (1,), 0),
               "doc_ids": ("<U8", (1,), 0), "target_names": ("<U8", (1,), 0)}
    _npz(home / "newsclf_corpus.npz", members, "text", stored)
    return home


def _predictions(tmp: Path, stored: bool) -> Path:
    run = tmp / "runs" / "20990101-000000-000-bomb"
    run.mkdir(parents=True)
    members = {"doc_id": ("<U8", (10,), 0), "y_true": ("<i8", (10,), 0), "y_pred": ("<i8", (10,), 0),
               "probs": ("<f4", (BOMB // 80, 20), 0)}
    _npz(run / "predictions_test.npz", members, "probs", stored)
    return run


NPZ = {
    "corpus-deflated-bomb": (lambda t: _corpus(t, False), "from newsclf.data.cache import read_cache; from pathlib import Path",
                             "read_cache(Path({p!r}))", "DataError"),
    "corpus-header-lies": (lambda t: _corpus(t, True), "from newsclf.data.cache import read_cache; from pathlib import Path",
                           "read_cache(Path({p!r}))", "DataError"),
    "predictions-deflated-bomb": (lambda t: _predictions(t, False), "from newsclf import store",
                                  "store.read_predictions({p!r}, 'test')", "DamagedError"),
    "predictions-header-lies": (lambda t: _predictions(t, True), "from newsclf import store",
                                "store.read_predictions({p!r}, 'test')", "DamagedError"),
}


@pytest.mark.parametrize("case", sorted(NPZ))
def test_npz_sizes_are_checked_before_anything_is_inflated(case, tmp_path):
    build, setup, action, error = NPZ[case]
    path = build(tmp_path)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    assert size < SMALL
    growth, outcome = peak_growth(setup, action.format(p=str(path)))
    assert outcome.startswith(f"refused {error}"), outcome
    assert growth < LIMIT_MB, f"{case}: {growth:.0f} MB"


def test_an_archive_bomb_is_stopped_while_it_inflates(tmp_path):
    archive = tmp_path / "20news-bydate.tar.gz"
    with gzip.open(archive, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar, \
            open("/dev/zero", "rb") as zero:
        info = tarfile.TarInfo("20news-bydate-train/sci.space/1")
        info.size = BOMB
        tar.addfile(info, zero)
    assert archive.stat().st_size < SMALL
    growth, outcome = peak_growth("from newsclf.data.archive import read_source; from pathlib import Path",
                                  f"read_source(Path({str(archive)!r}))")
    assert outcome.startswith("refused DataError") and "inflates to more than" in outcome, outcome
    assert growth < LIMIT_MB, f"{growth:.0f} MB"


def test_run_json_files_are_read_with_a_size_limit(tmp_path):
    run = tmp_path / "runs" / "20990101-000000-000-huge"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "tfidf"}))
    for name in ("status.json", "results.json", "labels.json"):
        with open(run / name, "wb") as fh:
            fh.truncate(2 << 30)
    growth, outcome = peak_growth("from newsclf import store; from pathlib import Path",
                                  f"print(store.read_run(Path({str(run)!r})).state, store.read_status(Path({str(run)!r})))")
    assert outcome == "accepted"
    assert growth < 50, f"{growth:.0f} MB"


@pytest.mark.parametrize("kind", ["sparse-1GB", "tiny-events-3MB", "one-endless-line-9MB"])
def test_metrics_jsonl_is_streamed_and_thinned(kind, tmp_path):
    path = tmp_path / "metrics.jsonl"
    with open(path, "wb") as fh:
        if kind == "sparse-1GB":
            fh.truncate(1 << 30)
        elif kind == "tiny-events-3MB":
            fh.write(b'{"type":"step"}\n' * (3 * (1 << 20) // 16))
        else:
            fh.write(b'{"type": "step", "x": "' + b"y" * (9 << 20) + b'"}\n')
    growth, outcome = peak_growth("from newsclf import store; from pathlib import Path",
                                  f"print(len(store.read_metrics(Path({str(path)!r}))[0]))")
    assert outcome == "accepted"
    assert growth < LIMIT_MB, f"{kind}: {growth:.0f} MB"


@pytest.mark.parametrize("name", ["texts.txt", "texts.csv"])
def test_a_huge_batch_upload_is_read_bounded(name):
    """The Playground's upload: 150 MB in the browser's buffer; only its first 8 MB are read and at most
    500 texts kept, however many tiny texts it holds."""
    setup = f"""
import io
from newsclf.ui.batch_view import MAX_UPLOAD_BYTES, read_upload
upload = io.BytesIO((b"a,b\\n" if {name!r}.endswith(".csv") else b"x\\n\\n") * (150 * (1 << 20) // 4))
"""
    growth, outcome = peak_growth(setup, f"texts, total = read_upload({name!r}, upload.read(MAX_UPLOAD_BYTES + 1)"
                                         "[:MAX_UPLOAD_BYTES], 500); assert len(texts) == 500 and total > 1000")
    assert outcome == "accepted", outcome
    assert growth < LIMIT_MB, f"{name}: {growth:.0f} MB"
    os.environ.get("CI")
