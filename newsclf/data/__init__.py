"""20 Newsgroups via scikit-learn: data home, offline archive import, the seed protocol, stats.

The package, bottom to top (each module imports only those before it):

- `errors`  — DataError (a problem the user can fix) and DataMissingError (whose message names
  the two commands that get the corpus).
- `archive` — reading a 20news-bydate archive or folder into memory safely (no links followed,
  checksums verified) and checking it is complete (the exact 11,314 / 7,532 documents).
- `cache`   — newsclf's corpus cache ``<data_home>/newsclf_corpus.npz``: numpy arrays written
  atomically and verified, read without following links and with ``allow_pickle=False``.
- `corpus`  — the data home; `fetch_corpus` (sklearn's download, in a private temp folder) and
  `import_archive` (a local ``20news-bydate.tar.gz`` or its folder, offline), which write that
  cache and, for plain sklearn users only, sklearn's ``20news-bydate_py3.pkz``; `clear_caches`.
- `dataset` — the protocols (``seed``/``raw``) on top of newsclf's cache, with sklearn's removal
  functions and default order reproduced exactly: `load_dataset`, `Split`, `Dataset`,
  `get_documents`, `sample_documents`, `content_words`.
- `stats`   — `compute_stats` (cached in process and as JSON beside the corpus), `precompute_stats`,
  `top_words`.

Everything public is re-exported here: ``from newsclf.data import X`` is the supported import.
Nothing in a data home is ever unpickled (it may be a shared drive): sklearn's .pkz is written,
never read; a data home with only that file is "not imported yet".
sklearn is imported lazily (it takes a second or two). Never imports torch or streamlit.
"""
from __future__ import annotations

from newsclf.data.errors import CACHE_FILE, SKLEARN_CACHE_FILE, DataError, DataMissingError, missing_message
from newsclf.data.archive import CATEGORIES, SPLIT_FOLDERS, TEST_FOLDER, TRAIN_FOLDER
from newsclf.data.corpus import (Progress, cache_path, clear_caches, corpus_available, fetch_corpus,
                                 import_archive)
from newsclf.data.dataset import (REMOVE, Dataset, Document, Split, content_words, get_documents, load_dataset,
                                  sample_documents)
from newsclf.data.stats import STATS_FILE, STATS_VERSION, DatasetStats, compute_stats, precompute_stats, top_words

__all__ = [
    "CACHE_FILE", "CATEGORIES", "REMOVE", "SKLEARN_CACHE_FILE", "SPLIT_FOLDERS", "STATS_FILE", "STATS_VERSION", "TEST_FOLDER",
    "TRAIN_FOLDER", "DataError", "DataMissingError", "Dataset", "DatasetStats", "Document", "Progress", "Split",
    "cache_path", "clear_caches", "compute_stats", "content_words", "corpus_available", "fetch_corpus",
    "get_documents", "import_archive", "load_dataset", "missing_message", "precompute_stats", "sample_documents", "top_words",
]
