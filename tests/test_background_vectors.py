"""The packaged model's background vectors shipped in qa/fitted/ (qa/models/background_vectors.py): current,
what the build computes, and used only where they fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import write_tiny_corpus
from qa.indexing.build import build as build_index
from qa.models import background_vectors, export
from qa.models.embedding import Embedder
from qa.models.refusal import read_background
from qa.settings import Settings

COMMAND = "python -m qa.models.background_vectors"
# Written on this machine, the shipped vectors are the build's bits exactly; another CPU's kernels may give
# other last digits (float32 rounding is about 6e-8 here). Stale or wrong vectors differ by far more.
LAST_DIGITS = 1e-6


@pytest.mark.slow  # exports the packaged model and embeds the 600 questions
def test_the_shipped_background_vectors_are_current_and_what_the_packaged_export_computes(tmp_path):
    settings = Settings(tuned_dir=tmp_path / "models")
    embedder = Embedder(settings.model, settings.batch_size, settings.threads)
    made = export.ensure(settings, embedder, print)
    questions = read_background(settings.background_file)
    shipped = background_vectors.shipped(made.key, questions, settings.batch_size)
    assert shipped is not None, f"the packaged model's export or the background questions changed: run {COMMAND}"
    embedder.use_export(made)
    again = background_vectors.embed(embedder.encode, questions)
    assert again.shape == shipped.shape and np.abs(again - shipped).max() <= LAST_DIGITS, f"stale: run {COMMAND}"


def test_shipped_background_vectors_are_used_only_for_their_export_questions_and_batch_size(tmp_path,
                                                                                            monkeypatch):
    record = json.loads(background_vectors.RECORD_FILE.read_text(encoding="utf-8"))
    questions = read_background(Settings().background_file)
    key, batch = record["export_key"], record["batch_size"]
    assert record["command"] == COMMAND and batch == Settings().batch_size
    vectors = background_vectors.shipped(key, questions, batch)
    assert vectors.shape == (len(questions), 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert background_vectors.shipped("another-export", questions, batch) is None
    assert background_vectors.shipped(key, questions[:-1], batch) is None  # an edited background file
    assert background_vectors.shipped(key, questions, batch + 1) is None  # other batches, other last digits
    altered = vectors.copy()
    altered[0, 0] += 1e-3
    np.save(tmp_path / "vectors.npy", altered)
    monkeypatch.setattr(background_vectors, "VECTORS_FILE", tmp_path / "vectors.npy")
    assert background_vectors.shipped(key, questions, batch) is None  # not the file the record names
    monkeypatch.setattr(background_vectors, "VECTORS_FILE", tmp_path / "missing.npy")
    assert background_vectors.shipped(key, questions, batch) is None


def test_a_build_with_the_packaged_model_takes_the_shipped_vectors_and_would_have_computed_them(tmp_path, embedder,
                                                                                                 monkeypatch):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    shipped_build = build_index(Settings(corpus_dir=corpus, index_dir=tmp_path / "shipped"), embedder)
    assert shipped_build.embedded == shipped_build.chunks + 2 * shipped_build.sentences  # the background: shipped
    monkeypatch.setattr(background_vectors, "RECORD_FILE", tmp_path / "no-record.json")
    embedded_build = build_index(Settings(corpus_dir=corpus, index_dir=tmp_path / "embedded"), embedder)
    background = len(read_background(Settings().background_file))
    assert embedded_build.embedded == shipped_build.embedded + background
    ours, theirs = (np.load(report.directory / "background_vectors.npy")
                    for report in (shipped_build, embedded_build))
    assert np.abs(ours - theirs).max() <= LAST_DIGITS
    for name in ("chunk_vectors.npy", "sentence_vectors.npy", "answer_vectors.npy"):  # the corpus's: unchanged
        assert np.array_equal(np.load(shipped_build.directory / name), np.load(embedded_build.directory / name))
    assert (json.loads((shipped_build.directory / "background.json").read_text()).keys()
            == json.loads((embedded_build.directory / "background.json").read_text()).keys())
