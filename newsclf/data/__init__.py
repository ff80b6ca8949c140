"""20 Newsgroups via scikit-learn: data home, offline archive import, the seed protocol, stats.

The package, bottom to top (each module imports only those before it):

- `errors`  — DataError (a problem the user can fix) and DataMissingError (whose message names
  the two commands that get the corpus).
- `archive` — reading a 20news-bydate archive or folder into memory safely (no links followed,
  checksums verified) and checking it is complete (the exact 11,314 / 7,532 documents).
- `corpus`  — the data home and sklearn's cache file ``<data_home>/20news-bydate_py3.pkz``;
  `fetch_corpus` (sklearn's download) and `import_archive` (a local ``20news-bydate.tar.gz`` or
  its folder, offline); `clear_caches`.
- `dataset` — the protocols (``seed``/``raw``) on top of that cache: `load_dataset`, `Split`,
  `Dataset`, `get_documents`, `sample_documents`, `content_words`.
- `stats`   — `compute_stats` (cached in process and as JSON beside the corpus), `precompute_stats`,
  `top_words`.

Everything public is re-exported here: ``from newsclf.data import X`` is the supported import.
sklearn is imported lazily (it takes a second or two). Never imports torch or streamlit.
"""
from __future__ import annotations

from newsclf.data.errors import DataError, DataMissingError, missing_message
from newsclf.data.archive import CATEGORIES, SPLIT_FOLDERS, TEST_FOLDER, TRAIN_FOLDER
from newsclf.data.corpus import (CACHE_FILE, Progress, cache_path, clear_caches, corpus_available, fetch_corpus,
                                 import_archive)
from newsclf.data.dataset import (REMOVE, Dataset, Document, Split, content_words, get_documents, load_dataset,
                                  sample_documents)
from newsclf.data.stats import STATS_FILE, STATS_VERSION, DatasetStats, compute_stats, precompute_stats, top_words

__all__ = [
    "CACHE_FILE", "CATEGORIES", "REMOVE", "SPLIT_FOLDERS", "STATS_FILE", "STATS_VERSION", "TEST_FOLDER",
    "TRAIN_FOLDER", "DataError", "DataMissingError", "Dataset", "DatasetStats", "Document", "Progress", "Split",
    "cache_path", "clear_caches", "compute_stats", "content_words", "corpus_available", "fetch_corpus",
    "get_documents", "import_archive", "load_dataset", "missing_message", "precompute_stats", "sample_documents", "top_words",
]
