"""The index on disk: build, load, cache, atomic swap, refusal of foreign or damaged indexes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT
from qa.indexing import build, index as index_store, stores
from qa.models import export
from qa.indexing.build import build as build_index
from qa.errors import IndexCorruptError, IndexIncompatibleError, IndexMissingError
from qa.models.refusal import read_background
from qa.settings import Settings


def test_build_then_load_gives_the_same_chunks_and_vectors(tiny_settings, fake_embedder):
    report = build_index(tiny_settings, fake_embedder)
    assert (report.files, report.chunks) == (3, 5)
    # Sentences alone and in their section, and the background questions refusal reads against.
    background = len(read_background(tiny_settings.background_file))
    assert report.embedded == report.chunks + 2 * report.sentences + background
    loaded = index_store.load(tiny_settings, dimension=fake_embedder.dimension)
    assert [c.section for c in loaded.chunks] == ["Naloxone Basics", "Forms Of Naloxone", "What Is Ketamine?",
                                                  "Symptoms", "Treatment"]
    texts = [c.index_text for c in loaded.chunks]
    np.testing.assert_allclose(loaded.chunk_vectors, fake_embedder.encode(texts), atol=1e-5)
    assert loaded.stores.chunks.size == 5 and loaded.stores.chunks.kind == "flat"
    manifest = loaded.manifest
    assert manifest["model"] == {"name": tiny_settings.model, "dimension": 384, "tuned": None,  # no question bank
                                 # the fake has no ONNX export: recorded as a model that runs itself
                                 "encoder": {"backend": "sentence-transformers",
                                             "key": export.export_key(tiny_settings.model),
                                             "export_failure": None,
                                             "environment": export.export_environment()}}
    assert set(manifest["corpus"]["files"]) == {"alpha.txt", "beta.txt", "gamma.md"}
    assert manifest["chunking"] == {"chunk_chars": tiny_settings.chunk_chars,
                                    "overlap_sentences": tiny_settings.overlap_sentences,
                                    "section_min_chars": tiny_settings.section_min_chars}
    assert {"faiss", "torch", "sentence_transformers", "bm25s", "onnxruntime"} <= set(manifest["libraries"])
    assert index_store.stale_reason(manifest, tiny_settings) is None


def test_short_sections_share_a_passage_and_each_sentence_keeps_its_section(tiny_settings, fake_embedder):
    settings = tiny_settings.replace(section_min_chars=300)
    build_index(settings, fake_embedder)
    loaded = index_store.load(settings, dimension=fake_embedder.dimension)
    several = [c for c in loaded.chunks if c.sentence_sections]
    assert several, "the tiny articles' one-line sections share passages"
    for chunk in several:
        for sentence in chunk.sentences:
            sentence_id = loaded.sentences.index(sentence)
            # answer choice reads each sentence in its own section, not in the passage's first
            expected = fake_embedder.encode_one(build.context_text(chunk.section_of(sentence), sentence))
            assert np.allclose(loaded.context_vectors[sentence_id], expected)
    assert {c.section_of(s) for c in several for s in c.sentences} > {c.section for c in several}
    again = build_index(settings, fake_embedder)
    assert again.embedded == 0, "a rebuild finds every vector, the sentences read in their own sections included"


def test_rebuild_embeds_only_what_changed(tiny_settings, fake_embedder):
    first = build_index(tiny_settings, fake_embedder)
    before = fake_embedder.texts_encoded
    again = build_index(tiny_settings, fake_embedder)
    assert again.embedded == 0 and fake_embedder.texts_encoded == before, "an unchanged corpus embeds nothing"
    assert again.directory == first.directory, "and writes no new generation"

    from qa.models.embedding import Embedder
    fresh = Embedder(tiny_settings.model)
    assert build_index(tiny_settings, fresh).embedded == 0
    assert not fresh.loaded, "a rebuild with nothing new to embed never loads the model"

    beta = tiny_settings.corpus_dir / "beta.txt"
    beta.write_text(beta.read_text().replace("severe depression", "treatment-resistant depression"))
    loaded = index_store.load(tiny_settings)
    assert "changed: beta.txt" in index_store.stale_reason(loaded.manifest, tiny_settings)
    changed = build_index(tiny_settings, fake_embedder)
    # beta's one chunk and its one changed sentence (alone and in its section); nothing of alpha or gamma
    assert changed.embedded == 3
    assert fake_embedder.texts_encoded - before == 3

    (tiny_settings.corpus_dir / "alpha.txt").unlink()
    removed = build_index(tiny_settings, fake_embedder)
    assert removed.embedded == 0
    assert {c.source for c in index_store.load(tiny_settings).chunks} == {"beta.txt", "gamma.md"}


def test_an_index_read_by_older_readers_is_rebuilt_reusing_its_vectors(tiny_settings, fake_embedder, monkeypatch):
    from qa.reading import corpus

    first = build_index(tiny_settings, fake_embedder)
    assert index_store.load(tiny_settings).manifest["corpus"]["readers"] == corpus.READER_VERSION
    # the same bytes may read differently after a change of rules: file hashes alone cannot see it
    monkeypatch.setattr(corpus, "READER_VERSION", corpus.READER_VERSION + 1)
    assert "article readers changed" in index_store.stale_reason(index_store.load(tiny_settings).manifest,
                                                                 tiny_settings)
    again = build_index(tiny_settings, fake_embedder)
    assert again.directory != first.directory and again.embedded == 0
    assert index_store.stale_reason(index_store.load(tiny_settings).manifest, tiny_settings) is None


def test_an_index_read_by_other_reading_settings_is_rebuilt(tiny_settings, fake_embedder):
    """The readers' rules are settings (the reading group): the index records them, and one read by others is stale;
    an index from before they were recorded was read with the defaults, and stays current."""
    first = build_index(tiny_settings, fake_embedder)
    manifest = index_store.load(tiny_settings).manifest
    assert manifest["corpus"]["reading"]["heading_max_words"] == Settings().heading_max_words
    assert index_store.stale_reason(manifest, tiny_settings.replace(heading_max_words=3)) is not None
    del manifest["corpus"]["reading"]
    assert index_store.stale_reason(manifest, tiny_settings) is None
    again = build_index(tiny_settings.replace(heading_max_words=3), fake_embedder)
    assert again.directory != first.directory


def test_an_index_scored_with_other_bm25_settings_is_rebuilt_reusing_its_vectors(tiny_settings, fake_embedder):
    """BM25's k1 and b are written into the lexical store at build time: the index records them, one built with
    others is stale, and one from before they were recorded was scored with bm25s's defaults (1.5, 0.75)."""
    first = build_index(tiny_settings, fake_embedder)
    manifest = index_store.load(tiny_settings).manifest
    assert manifest["lexical"] == {"k1": tiny_settings.bm25_k1, "b": tiny_settings.bm25_b}
    assert index_store.stale_reason(manifest, tiny_settings) is None
    assert index_store.stale_reason(manifest, tiny_settings.replace(bm25_b=0.3)) == "the BM25 settings changed"
    del manifest["lexical"]
    assert index_store.stale_reason(manifest, tiny_settings) == "the BM25 settings changed"
    assert index_store.stale_reason(manifest, tiny_settings.replace(bm25_k1=1.5, bm25_b=0.75)) is None
    again = build_index(tiny_settings.replace(bm25_b=0.3), fake_embedder)
    assert again.directory != first.directory and again.embedded == 0


def test_missing_index_says_which_command_builds_it(tmp_path):
    with pytest.raises(IndexMissingError, match="python -m qa build"):
        index_store.load(Settings(index_dir=tmp_path / "nothing"))


def test_index_of_another_model_is_refused(tiny_settings, fake_embedder):
    build_index(tiny_settings, fake_embedder)
    other = tiny_settings.replace(model="sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(IndexIncompatibleError) as error:
        index_store.load(other)
    assert "all-MiniLM-L6-v2" in str(error.value) and "python -m qa build --model" in str(error.value)
    with pytest.raises(IndexIncompatibleError, match="768"):
        index_store.load(tiny_settings, dimension=768)


def test_answer_vectors_are_stored_and_their_sources_left_on_disk(tiny_settings, fake_embedder):
    report = build_index(tiny_settings, fake_embedder)
    index = index_store.load(tiny_settings)
    # The serving process holds the answer vectors; the two arrays they are made from
    # stay memory-mapped (read only by the next build's cache).
    assert isinstance(index.sentence_vectors, np.memmap) and isinstance(index.context_vectors, np.memmap)
    assert not isinstance(index.answer_vectors, np.memmap)
    expected = (np.load(report.directory / "sentence_vectors.npy") + np.load(report.directory / "context_vectors.npy")) / 2
    assert np.allclose(index.answer_vectors, expected, atol=1e-7)
    assert index.answer_vectors.dtype == np.float32


@pytest.mark.parametrize("victim", ["chunk_vectors.npy", "context_vectors.npy", "answer_vectors.npy", "dense.faiss",
                                    "chunks.jsonl", "manifest.json"])
def test_damaged_file_is_named_with_the_fix(tiny_settings, fake_embedder, victim):
    report = build_index(tiny_settings, fake_embedder)
    path = report.directory / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(IndexCorruptError) as error:
        index_store.load(tiny_settings)
    assert victim in str(error.value) and "python -m qa build" in str(error.value)


def test_a_failed_build_leaves_the_previous_index_live(tiny_settings, fake_embedder, monkeypatch):
    first = build_index(tiny_settings, fake_embedder)
    (tiny_settings.corpus_dir / "delta.txt").write_text("Delta Title\n\nA new sentence about sleep.\n")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C arrived while files were being written

    with monkeypatch.context() as patch:  # undone on leaving, unlike the fixture's own patches
        patch.setattr(stores.faiss, "write_index", crash)
        with pytest.raises(KeyboardInterrupt):
            build_index(tiny_settings, fake_embedder)
    loaded = index_store.load(tiny_settings)
    assert loaded.directory == first.directory
    assert "delta.txt" not in {c.source for c in loaded.chunks}
    # the next build cleans the leftovers and goes live
    build_index(tiny_settings, fake_embedder)
    assert not [p for p in tiny_settings.index_dir.iterdir() if p.name.startswith(".tmp-")]
    assert "delta.txt" in {c.source for c in index_store.load(tiny_settings).chunks}


def test_build_killed_at_random_points_never_breaks_the_index(tiny_settings, embedder):
    """SIGKILL a real `python -m qa build` at several moments: the index always loads."""
    build_index(tiny_settings, embedder)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "qa", "build", "--corpus", str(tiny_settings.corpus_dir),
               "--index", str(tiny_settings.index_dir)]
    rng = np.random.default_rng(7)
    for attempt, delay in enumerate(sorted(rng.uniform(2.0, 12.0, size=4))):
        # A changed article each time, so every build has real work to write.
        (tiny_settings.corpus_dir / "beta.txt").write_text(
            f"Beta Article\n\nSection\n\nKetamine fact number {attempt} for the build.\n")
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        loaded = index_store.load(tiny_settings)  # raises if the kill left a broken index
        assert loaded.stores.chunks.size == len(loaded.chunks) > 0


def test_generations_are_pruned(tiny_settings, fake_embedder):
    for number in range(4):
        (tiny_settings.corpus_dir / "beta.txt").write_text(f"Beta\n\nSection\n\nFact {number} about ketamine.\n")
        build_index(tiny_settings, fake_embedder)
    generations = [p for p in tiny_settings.index_dir.iterdir() if p.name.startswith("build-")]
    assert len(generations) == 2
    live = (tiny_settings.index_dir / "CURRENT").read_text().strip()
    assert live in {p.name for p in generations}
    assert json.loads((tiny_settings.index_dir / live / "manifest.json").read_text())["counts"]["articles"] == 3


def test_app_start_rebuilds_a_foreign_or_damaged_index(tiny_settings, fake_embedder):
    embedder = fake_embedder
    from qa.serving.engine import Engine
    report = build_index(tiny_settings, embedder)
    (report.directory / "dense.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError):
        Engine.open(tiny_settings, build="missing", embedder=embedder)
    messages: list[str] = []
    engine = Engine.open(tiny_settings, build="stale", embedder=embedder, say=messages.append)
    assert any("cannot be used" in m and "dense.faiss" in m for m in messages)
    assert engine.ask("what forms does naloxone come in").answer_source.source == "alpha.txt"


def test_an_index_whose_tuned_model_is_gone_is_refused_by_what_answers_not_by_the_store(tiny_settings, fake_embedder):
    from qa.indexing import question_model
    report = build_index(tiny_settings, fake_embedder)
    path = report.directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["model"]["tuned"] = {"key": "0123456789abcdef0123"}  # a tuned model nobody has
    path.write_text(json.dumps(manifest))
    assert index_store.load(tiny_settings).directory == report.directory  # the folder itself is whole
    with pytest.raises(IndexCorruptError, match="fine-tuned model that is no longer in .*python -m qa build"):
        question_model.load(tiny_settings)
    assert question_model.query_model(manifest, tiny_settings).endswith("0123456789abcdef0123")
