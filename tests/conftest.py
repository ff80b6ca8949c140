"""Shared test fixtures: a synthetic 20 Newsgroups corpus imported through the real import path."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # makes `import fixtures_corpus` work

from fixtures_corpus import make_fixture_archive  # noqa: E402


@pytest.fixture(scope="session")
def fixture_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures_corpus.py's corpus (12 train + 6 test posts per class) as a 20news-bydate.tar.gz."""
    return make_fixture_archive(tmp_path_factory.mktemp("fixture_corpus"))


@pytest.fixture(scope="session")
def fixture_data_home(tmp_path_factory: pytest.TempPathFactory, fixture_archive: Path) -> Path:
    """A data home holding the fixture corpus, imported with newsclf.data.import_archive. Do not modify it.

    Seed protocol: 176 train / 44 val / 110 test documents; raw: 192 / 48 / 120.
    Pass it as `data_home=` (or set NEWSCLF_DATA_HOME) to load_dataset, compute_stats, the CLI.
    """
    from newsclf.data import import_archive

    home = tmp_path_factory.mktemp("fixture_data_home")
    import_archive(fixture_archive, home)
    return home
