"""Corpora: 20 Newsgroups via scikit-learn (data home, offline archive import, the seed protocol, stats) and tables of your own.

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

Corpora of your own (a named corpus: ``<data_home>/corpora/<name>.npz``; ``20newsgroups`` is the built-in
default), each module importing only those before it:

- `values`, `tables`, `parquet` — reading a CSV/TSV/JSON Lines/Parquet table's mapped columns in bounded
  batches (UTF-8 checked, the source hashed in the same pass); what a text, label or split cell means.
- `rows`    — keeping or dropping each row and checking its values as the batches arrive.
- `splits`  — the stratified train/val/test rule (or a given split column) and the seeded load order.
- `corpusmeta`, `corpusfile` — the corpus file: checksummed numpy arrays plus JSON metadata, written
  atomically and verified, read without following links or unpickling.
- `corpora` — names, paths, `list_corpora`, and the loader API `load_corpus` / `corpus_identity` /
  `corpus_documents` (20 Newsgroups goes to `dataset`).
- `ingest`  — `import_table`, the whole import.
- `corpus_stats` — `dataset_stats` of any Dataset and `corpus_stats` (cached) of an imported corpus.

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
from newsclf.data.corpora import (DEFAULT_CORPUS, NAME_RULE, CorpusDataset, CorpusInfo, CorpusRef, check_name,
                                  corpus_documents, corpus_identity, list_corpora, load_corpus)
from newsclf.data.corpusmeta import CorpusMeta
from newsclf.data.ingest import ImportResult, import_table
from newsclf.data.corpus_stats import CorpusStats, corpus_stats, dataset_stats

__all__ = [
    "CACHE_FILE", "CATEGORIES", "REMOVE", "SKLEARN_CACHE_FILE", "SPLIT_FOLDERS", "STATS_FILE", "STATS_VERSION", "TEST_FOLDER",
    "TRAIN_FOLDER", "DataError", "DataMissingError", "Dataset", "DatasetStats", "Document", "Progress", "Split",
    "cache_path", "clear_caches", "compute_stats", "content_words", "corpus_available", "fetch_corpus",
    "get_documents", "import_archive", "load_dataset", "missing_message", "precompute_stats", "sample_documents", "top_words",
    # corpora of your own (issue 20)
    "DEFAULT_CORPUS", "NAME_RULE", "CorpusDataset", "CorpusInfo", "CorpusMeta", "CorpusRef", "CorpusStats", "ImportResult",
    "check_name", "corpus_documents", "corpus_identity", "corpus_stats", "dataset_stats", "import_table", "list_corpora",
    "load_corpus",
]
