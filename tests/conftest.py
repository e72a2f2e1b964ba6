"""Shared fixtures: the real model once per session, real indexes in temporary folders."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# One folder of fine-tuned models for the whole run, this process and the
# `python -m qa` / `app.py` processes the tests start (they read QA_TUNED_DIR):
# the model tuned on the real question bank is trained once (about a minute),
# not once per temporary index folder.
TUNED_DIR = Path(tempfile.mkdtemp(prefix="qa-tuned-"))
os.environ["QA_TUNED_DIR"] = str(TUNED_DIR)
atexit.register(shutil.rmtree, TUNED_DIR, True)
# Nothing a test starts writes the project's data/feedback.sqlite3: whatever reads the
# settings from the environment gets this throwaway database (tests that look at one name their own).
FEEDBACK_DIR = Path(tempfile.mkdtemp(prefix="qa-feedback-"))
os.environ["QA_FEEDBACK_DB"] = str(FEEDBACK_DIR / "feedback.sqlite3")
atexit.register(shutil.rmtree, FEEDBACK_DIR, True)

from qa.models.embedding import Embedder  # noqa: E402
from qa.settings import Settings  # noqa: E402

# The tests' own copy of the five seed articles and their example questions, never corpus/ itself,
# which a maintainer changes as articles come (tests/fixtures/README.md).
CORPUS = ROOT / "tests" / "fixtures" / "seeds"

# Three tiny articles with known structure, for exact expectations.
TINY = {
    "alpha.txt": """Alpha Article About Naloxone

Naloxone Basics

Naloxone reverses opioid overdose within minutes. It binds to opioid receptors in the brain.

Forms Of Naloxone

Naloxone comes in these forms:
  • Nasal spray for emergencies.
  • Injectable solution for clinics.
""",
    "beta.txt": """Beta Article About Ketamine

What Is Ketamine?

Ketamine is a dissociative anesthetic. Doctors use it in surgery and for severe depression.

Leave a Comment
""",
    "gamma.md": """# Gamma Notes On Withdrawal

## Symptoms

Opioid withdrawal causes sweating, nausea and muscle aches. Symptoms begin within a day of the last dose.

## Treatment

Methadone and buprenorphine reduce cravings during withdrawal.
""",
}


# A test that needs any of these loads the real model (or a process that does): it is slow.
REAL_MODEL_FIXTURES = {"embedder", "engine", "real_settings", "app_server"}


def pytest_collection_modifyitems(items):
    """Mark the slow tier by what a test uses, so nobody has to remember to."""
    for item in items:
        if item.get_closest_marker("browser") or REAL_MODEL_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    return Embedder(Settings().model)


@pytest.fixture
def fake_embedder(monkeypatch):
    """A deterministic embedder that loads nothing (tests/fakes.py): for storage, not meaning.

    It has no torch model to export to ONNX, so its builds skip the export, as a build
    does for a model that cannot be exported (and nothing is recorded in the shared store)."""
    from fakes import FakeEmbedder
    from qa.models import export
    monkeypatch.setattr(export, "ensure", lambda settings, embedder, say, key=None: None)
    return FakeEmbedder()


def write_corpus(folder: Path, articles: dict[str, str], bank: dict[str, list] | None = None) -> Path:
    """The one way tests write a corpus: articles by file name, and optional question bank files
    (file name -> lines, each a dict written as JSON or a string written as it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (folder / name).write_text(text, encoding="utf-8")
    for name, lines in (bank or {}).items():
        (folder / "questions").mkdir(exist_ok=True)
        rows = [line if isinstance(line, str) else json.dumps(line) for line in lines]
        (folder / "questions" / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def write_tiny_corpus(folder: Path) -> Path:
    return write_corpus(folder, TINY)


@pytest.fixture
def tiny_settings(tmp_path: Path) -> Settings:
    # Each one-line section a passage of its own (section_min_chars 0): five passages to rank and show.
    return Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index",
                    section_min_chars=0)


@pytest.fixture
def tiny_engine(tiny_settings, fake_embedder):
    """An engine over the three tiny articles, embedded with the fake embedder: for how the engine works,
    not what the model understands (fast tier)."""
    from qa.indexing.build import build as build_index
    from qa.serving.engine import Engine
    build_index(tiny_settings, fake_embedder)
    return Engine.open(tiny_settings, build="never", embedder=fake_embedder)


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    """The five real articles (copied) and a fresh index folder."""
    base = tmp_path_factory.mktemp("real")
    shutil.copytree(CORPUS, base / "corpus")
    return Settings(corpus_dir=base / "corpus", index_dir=base / "index", tuned_dir=TUNED_DIR)


@pytest.fixture(scope="session")
def engine(real_settings, embedder):
    from qa.serving.engine import Engine
    return Engine.open(real_settings, build="missing", embedder=embedder)
