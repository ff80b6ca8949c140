"""Shared test fixtures: a synthetic 20 Newsgroups corpus imported through the real import path."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.corpus import make_fixture_archive
from tests.helpers.runs import train_tiny_run


@pytest.fixture(scope="session")
def fixture_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/helpers/corpus.py's corpus (12 train + 6 test posts per class) as a 20news-bydate.tar.gz."""
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


# ---- shared runs: real tiny training on the fixture corpus (one per kind) ----------------------
import os  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when transformers is imported: never reach the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# never the user's real job signing key (direct trainers sign their liveness record with it)
os.environ.setdefault("NEWSCLF_JOB_KEY_FILE", os.path.join(__import__("tempfile").mkdtemp(prefix="newsclf-key-"),
                                                             "job.key"))


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random DistilBERT and BERT checkpoints saved with save_pretrained (tests/tiny_models.py)."""
    from tests.helpers.tiny_models import make_tiny_bert, make_tiny_distilbert

    root = tmp_path_factory.mktemp("tiny_models")
    return {"distilbert": make_tiny_distilbert(root / "distilbert"), "bert": make_tiny_bert(root / "bert")}


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, fixture_data_home, tiny_model_dirs) -> dict[str, Path]:
    """A runs dir with three finished runs: {"tfidf": dir, "bilstm": dir, "transformer": dir, "runs_dir": dir}.

    Read-only for tests: copy a run (shutil.copytree) before changing it.
    """
    runs_dir = tmp_path_factory.mktemp("tiny_runs")
    out = {"runs_dir": runs_dir}
    out["tfidf"] = train_tiny_run(runs_dir, fixture_data_home, model="tfidf", name="tfidf")
    out["bilstm"] = train_tiny_run(runs_dir, fixture_data_home, model="bilstm", name="bilstm")
    out["transformer"] = train_tiny_run(runs_dir, fixture_data_home, model="transformer", name="distilbert-full",
                                        pretrained=str(tiny_model_dirs["distilbert"]), strategy="full")
    return out
