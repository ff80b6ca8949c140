"""A public data set no one here wrote, brought as a user would: a CSV built from the ChatterBot corpus
(shipped inside its PyPI wheel; requirements-dev.txt), imported through the real CLI in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsclf import data
from tests.helpers.public_corpus import corpus_root, write_csv

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(corpus_root() is None, reason="chatterbot-corpus not installed (requirements-dev)")]
ROOT = Path(__file__).resolve().parents[1]


def _cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "newsclf", *argv], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_chatterbot_topics_through_the_cli(tmp_path):
    """21 English topics from 1,050 conversations down to 1: the small classes follow the split rule
    (a one-conversation class is train-only), and every multi-line text comes back exactly."""
    rows = write_csv(tmp_path / "chatterbot.csv", by="category")
    home = tmp_path / "home"
    proc = _cli("data", "import-table", str(tmp_path / "chatterbot.csv"), "--name", "chatterbot-topics",
                "--text", "text", "--label", "label", "--id", "id", "--data-home", str(home))
    assert proc.returncode == 0, proc.stderr
    assert "imported corpus 'chatterbot-topics' (version 1)" in proc.stdout
    ds = data.load_corpus("chatterbot-topics", home)
    kept = [r for r in rows if r[1].strip()]
    assert sorted(ds.label_names) == sorted({r[2] for r in kept}) and len(ds.label_names) == 21
    got = {i: (t, ds.label_names[int(y)]) for part in (ds.train, ds.val, ds.test)
           for i, t, y in zip(part.doc_ids, part.texts, part.labels)}
    assert got == {i: (t, label) for i, t, label in kept}
    assert sum("\n" in t for t, _ in got.values()) > 1000
    health = ds.label_names.index("health")  # one conversation: train only
    assert health in ds.train.labels and health not in ds.test.labels
    stats = _cli("data", "stats", "--corpus", "chatterbot-topics", "--data-home", str(home))
    assert stats.returncode == 0 and "21 classes" in stats.stdout and "tech support" in stats.stdout


def test_chatterbot_languages_through_the_cli(tmp_path):
    """28 languages in many scripts (Bengali, Chinese, Persian, Japanese...): UTF-8 end to end."""
    rows = write_csv(tmp_path / "languages.csv", by="language")
    home = tmp_path / "home"
    proc = _cli("data", "import-table", str(tmp_path / "languages.csv"), "--name", "chatterbot-languages",
                "--text", "text", "--label", "label", "--data-home", str(home))
    assert proc.returncode == 0, proc.stderr
    listing = _cli("data", "list", "--data-home", str(home))
    assert "chatterbot-languages" in listing.stdout and "28 classes" in listing.stdout
    ds = data.load_corpus("chatterbot-languages", home)
    texts = set(ds.train.texts + ds.val.texts + ds.test.texts)
    assert {t for _, t, _ in rows if t.strip()} == texts
    assert any("\u0995" <= ch <= "\u09ff" for t in texts for ch in t)  # Bengali script survived
