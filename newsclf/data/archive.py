"""Reading a 20news-bydate archive or folder into memory, safely, and checking it is whole.

``read_source(path)`` returns ``{"train"|"test": {class: {file name: bytes}}}``. Nothing is
extracted to disk and nothing is followed: archive members that are links or special files, and
symbolic links in a folder, are refused (a link could point anywhere). The compressed stream is
read to its end, so gzip's CRC and length (bz2/xz: their checks) are verified, and whatever
follows the tar's end-of-archive marker must be zero padding: a damaged or cut archive raises
DataError "the archive ... is damaged (...): download it again" instead of becoming a corpus.

``check_corpus(corpus, expected)`` then decides whether the documents are complete:

- ``expected="auto"`` (the product path: CLI and dashboard): a tree whose file names are, for at
  least 90 % of its documents, article numbers within the range 20news-bydate has for that folder
  (`BYDATE`) is taken to be 20news-bydate, and must hold exactly its 11,314 train / 7,532 test
  documents, class by class. Any other tree in the same layout (e.g. the tests' synthetic corpus)
  gets the structural checks only: both splits, exactly the 20 class folders, none empty.
- a mapping ``{"train": n or {class: n}, "test": ...}``: those exact counts (a test hook).
- ``None``: structural checks only.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Mapping

from newsclf.data.errors import DataError
from newsclf.safeio import UnsafePathError, open_regular

CATEGORIES: tuple[str, ...] = (
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
    "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med", "sci.space",
    "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast", "talk.politics.misc",
    "talk.religion.misc",
)
TRAIN_FOLDER = "20news-bydate-train"
TEST_FOLDER = "20news-bydate-test"
SPLIT_FOLDERS = {TRAIN_FOLDER: "train", TEST_FOLDER: "test"}
MAX_TAR_BYTES = 1 << 30  # the real tar is 50 MB; refuse a "bomb" before it fills memory
MAX_DOC_BYTES = 4 << 20  # the longest post of the real corpus is ~160 kB
RECOGNISED_SHARE = 0.9

# (documents, smallest, largest article number) per class of 20news-bydate, computed once from
# 20news-bydate.tar.gz (sha256 9bbbfd70...8608): 11,314 train and 7,532 test documents.
BYDATE: dict[str, dict[str, tuple[int, int, int]]] = {
    "train": {
        "alt.atheism": (480, 49960, 54473), "comp.graphics": (584, 37261, 38816),
        "comp.os.ms-windows.misc": (591, 8514, 10082), "comp.sys.ibm.pc.hardware": (590, 58343, 61103),
        "comp.sys.mac.hardware": (578, 50418, 52223), "comp.windows.x": (593, 64830, 67494),
        "misc.forsale": (585, 70337, 77056), "rec.autos": (594, 101551, 103781),
        "rec.motorcycles": (598, 72052, 105662), "rec.sport.baseball": (597, 98657, 105169),
        "rec.sport.hockey": (600, 52550, 55022), "sci.crypt": (595, 14147, 15913),
        "sci.electronics": (591, 52434, 54152), "sci.med": (594, 57110, 59266),
        "sci.space": (593, 59497, 61422), "soc.religion.christian": (599, 20361, 21410),
        "talk.politics.guns": (546, 53293, 55475), "talk.politics.mideast": (564, 75364, 76534),
        "talk.politics.misc": (465, 124146, 179082), "talk.religion.misc": (377, 82757, 84558),
    },
    "test": {
        "alt.atheism": (319, 53068, 54564), "comp.graphics": (389, 38758, 40062),
        "comp.os.ms-windows.misc": (394, 10003, 10945), "comp.sys.ibm.pc.hardware": (392, 60721, 61178),
        "comp.sys.mac.hardware": (385, 51890, 52446), "comp.windows.x": (395, 67371, 68338),
        "misc.forsale": (390, 76115, 77014), "rec.autos": (396, 103007, 103895),
        "rec.motorcycles": (398, 104631, 105564), "rec.sport.baseball": (397, 104622, 105990),
        "rec.sport.hockey": (399, 53879, 54900), "sci.crypt": (396, 15728, 16359),
        "sci.electronics": (393, 53968, 54503), "sci.med": (396, 59225, 59652),
        "sci.space": (394, 61242, 62709), "soc.religion.christian": (398, 21329, 21808),
        "talk.politics.guns": (364, 54464, 55490), "talk.politics.mideast": (376, 76355, 77850),
        "talk.politics.misc": (310, 178474, 179116), "talk.religion.misc": (251, 83876, 84570),
    },
}
BYDATE_COUNTS = {split: {name: n for name, (n, _, _) in classes.items()} for split, classes in BYDATE.items()}

Corpus = dict[str, dict[str, dict[str, bytes]]]  # split -> class -> file name -> raw bytes
_OPENERS = ((b"\x1f\x8b", lambda fh: gzip.GzipFile(fileobj=fh)), (b"BZh", bz2.BZ2File), (b"\xfd7zXZ\x00", lzma.LZMAFile))


def read_source(source: Path) -> Corpus:
    """The documents of an archive or an extracted folder (see the module docstring)."""
    return _read_folder(source) if source.is_dir() else _read_archive(source)


def _damaged(archive: Path, detail: str) -> DataError:
    return DataError(f"import: the archive {archive.name} is damaged ({detail}): download it again")


# ---- archives -------------------------------------------------------------------------------
def inflate_budget(compressed_bytes: int) -> int:
    """How much tar an archive of this size may inflate to: 16 MB plus 6x its size, at most MAX_TAR_BYTES
    (the real 15 MB archive holds a 50 MB tar; a 1 MB "bomb" is stopped at 22 MB, not 1 GB)."""
    return min(MAX_TAR_BYTES, (16 << 20) + 6 * max(int(compressed_bytes), 0))


def _inflate(raw: BinaryIO, out: BinaryIO, limit: int, archive: Path) -> None:
    """Decompress `raw` into `out` chunk by chunk, read to EOF so the format's checksums are verified;
    DataError as soon as more than `limit` bytes come out (nothing beyond is decompressed)."""
    magic = raw.read(6)
    raw.seek(0)
    opener = next((op for m, op in _OPENERS if magic.startswith(m)), None)
    stream = opener(raw) if opener else raw
    total = 0
    try:
        while chunk := stream.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise DataError(f"import: {archive.name} inflates to more than {limit >> 20} MB; this is not the "
                                "20news-bydate corpus")
            out.write(chunk)
    finally:
        if opener:
            stream.close()


def _read_archive(archive: Path) -> Corpus:
    """The documents of an archive, decompressed into a private temp file (bounded by inflate_budget,
    never into memory whole), then read member by member."""
    try:
        with open_regular(archive) as raw, tempfile.TemporaryFile(prefix="newsclf-import-") as tar_file:
            limit = inflate_budget(os.fstat(raw.fileno()).st_size)
            _inflate(raw, tar_file, limit, archive)
            tar_file.seek(0)
            return _read_tar(tar_file, archive, limit)
    except DataError:
        raise
    except (IsADirectoryError, PermissionError, FileNotFoundError, UnsafePathError) as exc:
        raise DataError(f"import: cannot read {archive} ({exc})") from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError) as exc:
        raise _damaged(archive, f"{type(exc).__name__}: {exc}") from None


def _read_tar(tar_file: BinaryIO, archive: Path, limit: int) -> Corpus:
    try:
        tar = tarfile.open(fileobj=tar_file, mode="r:")
    except tarfile.TarError as exc:
        raise DataError(f"import: {archive.name} is not a tar archive ({exc}); "
                        "expected 20news-bydate.tar.gz") from None
    files: dict[tuple[str, ...], bytes] = {}
    dirs: set[tuple[str, ...]] = set()
    try:
        for member in tar:
            parts = _safe_parts(member.name)
            if member.isdir():
                dirs.add(parts)
                continue
            if not member.isreg():
                raise DataError(f"import: the archive holds a link or special file ({member.name}); refused")
            if member.size > MAX_DOC_BYTES:
                raise DataError(f"import: {member.name} is larger than {MAX_DOC_BYTES >> 20} MB; "
                                "this is not the 20news-bydate corpus")
            body = tar.extractfile(member).read()
            if len(body) != member.size:
                raise _damaged(archive, f"{member.name} is cut short")
            files[parts] = body
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _damaged(archive, f"{type(exc).__name__}: {exc}") from None
    tar_file.seek(tar.offset)
    while chunk := tar_file.read(1 << 20):  # tarfile ends quietly at a bad header; the rest must be zero padding
        if chunk.count(0) != len(chunk):
            raise _damaged(archive, f"tar data stops making sense at byte {tar.offset:,}")
    return _layout(files, dirs, archive.name)


def _safe_parts(name: str) -> tuple[str, ...]:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or "\\" in name:
        raise DataError(f"import: unsafe path in the archive ({name!r}); refused")
    return tuple(p for p in path.parts if p != ".")


def _layout(files: dict[tuple[str, ...], bytes], dirs: set[tuple[str, ...]], where: str) -> Corpus:
    """Files and folders keyed by path parts -> Corpus; the split folders may sit under one top folder."""
    prefixes = {parts[:i] for parts in [*files, *dirs] for i in range(min(len(parts), 2)) if parts[i] in SPLIT_FOLDERS}
    if len(prefixes) != 1:
        raise DataError(f"import: expected the folders {TRAIN_FOLDER}/ and {TEST_FOLDER}/ in {where!r}"
                        + ("" if prefixes else "; this is not the 20news-bydate corpus"))
    skip = len(next(iter(prefixes)))
    corpus: Corpus = {"train": {}, "test": {}}
    for parts in dirs:
        rel = parts[skip:]
        if parts[:skip] == next(iter(prefixes)) and len(rel) == 2 and rel[0] in SPLIT_FOLDERS:
            corpus[SPLIT_FOLDERS[rel[0]]].setdefault(rel[1], {})
    for parts, body in files.items():
        rel = parts[skip:]
        if parts[:skip] != next(iter(prefixes)) or not rel or rel[0] not in SPLIT_FOLDERS:
            continue  # e.g. a README beside the split folders
        if len(rel) != 3:
            raise DataError(f"import: {'/'.join(rel[:2])}/ holds something other than plain files")
        corpus[SPLIT_FOLDERS[rel[0]]].setdefault(rel[1], {})[rel[2]] = body
    return corpus


# ---- folders ---------------------------------------------------------------------------------
def _read_folder(source: Path) -> Corpus:
    root = source if (source / TRAIN_FOLDER).is_dir() else None
    if root is None:
        subdirs = [p for p in source.iterdir() if p.is_dir() and not p.is_symlink()]
        root = subdirs[0] if len(subdirs) == 1 else source
    files: dict[tuple[str, ...], bytes] = {}
    dirs: set[tuple[str, ...]] = set()
    for folder in SPLIT_FOLDERS:
        split = root / folder
        if not split.is_dir():
            continue
        _refuse_link(split, root)
        for cls in os.scandir(split):
            _refuse_link(Path(cls.path), root)
            if not cls.is_dir(follow_symlinks=False):
                raise DataError(f"import: {folder}/ holds something other than class folders")
            dirs.add((folder, cls.name))
            for entry in os.scandir(cls.path):
                files[(folder, cls.name, entry.name)] = _read_plain(Path(entry.path), root)
    return _layout(files, dirs, source.name)


def _refuse_link(path: Path, root: Path) -> None:
    if path.is_symlink():
        raise DataError(f"import: {path.relative_to(root)} is a symbolic link; refused (links are never followed)")


def _read_plain(path: Path, root: Path) -> bytes:
    """Bytes of a regular file, opened without following a link and without blocking (a FIFO is refused)."""
    _refuse_link(path, root)
    try:
        fh = open_regular(path, nofollow=True)
    except UnsafePathError:
        raise DataError(f"import: {path.parent.relative_to(root)}/ holds something other than plain files") from None
    except OSError as exc:
        raise DataError(f"import: cannot read {path.relative_to(root)} ({exc.strerror})") from None
    with fh:
        if os.fstat(fh.fileno()).st_size > MAX_DOC_BYTES:
            raise DataError(f"import: {path.relative_to(root)} is larger than {MAX_DOC_BYTES >> 20} MB")
        return fh.read(MAX_DOC_BYTES + 1)


# ---- completeness ----------------------------------------------------------------------------
def looks_like_bydate(corpus: Corpus) -> bool:
    """True when >= 90 % of the documents are named like 20news-bydate's articles of their folder."""
    total = like = 0
    for split, classes in corpus.items():
        for name, docs in classes.items():
            total += len(docs)
            _, lo, hi = BYDATE[split].get(name, (0, 1, 0))
            like += sum(1 for f in docs if f.isdigit() and lo <= int(f) <= hi)
    return total > 0 and like >= RECOGNISED_SHARE * total


def check_corpus(corpus: Corpus, expected: Any = "auto") -> None:
    """Raise DataError unless the corpus is complete (see the module docstring for `expected`)."""
    if isinstance(expected, str):
        if expected != "auto":
            raise ValueError(f"expected: 'auto', None or a mapping, got {expected!r}")
        expected = BYDATE_COUNTS if looks_like_bydate(corpus) else None
    if expected is not None:
        _check_counts(corpus, expected)
    _check_structure(corpus)


def _check_counts(corpus: Corpus, expected: Mapping[str, Any]) -> None:
    for split in ("train", "test"):
        want = expected[split]
        have = {name: len(docs) for name, docs in corpus[split].items()}
        want_total = sum(want.values()) if isinstance(want, Mapping) else int(want)
        short = [] if not isinstance(want, Mapping) else \
            [f"{name} {have.get(name, 0):,} of {n:,}" for name, n in want.items() if have.get(name, 0) != n]
        if sum(have.values()) != want_total or short:
            detail = f" ({', '.join(short[:3])}{', ...' if len(short) > 3 else ''})" if short else ""
            raise DataError(f"import: the archive is damaged or incomplete: {sum(have.values()):,} of "
                            f"{want_total:,} {split} documents{detail}; download it again")


def _check_structure(corpus: Corpus) -> None:
    """Both splits hold exactly the 20 class folders, each with at least one document."""
    for folder, split in SPLIT_FOLDERS.items():
        found = set(corpus[split])
        if not found:
            raise DataError(f"import: expected the folders {TRAIN_FOLDER}/ and {TEST_FOLDER}/; {folder}/ is "
                            "missing or empty; this is not the 20news-bydate corpus")
        missing, extra = sorted(set(CATEGORIES) - found), sorted(found - set(CATEGORIES))
        if missing or extra:
            detail = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                           f"unexpected {', '.join(extra)}" if extra else "") if x)
            raise DataError(f"import: {folder}/ must hold the 20 newsgroup folders: {detail}")
        for name in CATEGORIES:
            if not corpus[split][name]:
                raise DataError(f"import: {folder}/{name}/ is empty")
