"""Shared fixtures: the real model once per session, real indexes in temporary folders."""

from __future__ import annotations

import atexit
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

from qa.embedding import Embedder  # noqa: E402
from qa.settings import Settings  # noqa: E402

CORPUS = ROOT / "corpus"

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


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real packaged all-MiniLM-L6-v2, loaded once for the whole run."""
    return Embedder(Settings().model)


def write_tiny_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TINY.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_settings(tmp_path: Path) -> Settings:
    return Settings(corpus_dir=write_tiny_corpus(tmp_path / "corpus"), index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    """The five real articles (copied) and a fresh index folder."""
    base = tmp_path_factory.mktemp("real")
    shutil.copytree(CORPUS, base / "corpus")
    return Settings(corpus_dir=base / "corpus", index_dir=base / "index", tuned_dir=TUNED_DIR)


@pytest.fixture(scope="session")
def engine(real_settings, embedder):
    from qa.engine import Engine
    return Engine.open(real_settings, build="missing", embedder=embedder)
