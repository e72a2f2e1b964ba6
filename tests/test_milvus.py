"""The Milvus store with a real milvus-lite file in a temporary index folder: build, load, ask, rebuild,
the alias switch, an interrupted build, and the manifest and settings checks."""

from __future__ import annotations

import numpy as np
import pytest

from qa.indexing import index as index_store, milvus_store
from qa.indexing.build import build as build_index
from qa.serving.engine import Engine
from qa.errors import IndexCorruptError, IndexIncompatibleError, StoreUnavailableError
from qa.indexing.milvus_store import MilvusBackend

QUESTIONS = ["what forms does naloxone come in", "what is ketamine used for", "when do withdrawal symptoms begin",
             "how fast does naloxone work", "what is the capital of France"]


@pytest.fixture
def milvus_settings(tiny_settings):
    settings = tiny_settings.replace(store="milvus")
    yield settings
    milvus_store.close(settings)  # each test's milvus-lite engine stops with it


def _live_collection(settings) -> str | None:
    return milvus_store.live_collection(settings)


def test_build_load_and_answers_agree_with_faiss(milvus_settings, tiny_settings, embedder, tmp_path):
    report = build_index(milvus_settings, embedder)
    assert (milvus_settings.index_dir / "milvus.db").exists()
    loaded = index_store.load(milvus_settings, dimension=embedder.dimension)
    entry = loaded.manifest["store"]
    assert entry["backend"] == "milvus" and entry["uri"] == ""
    assert entry["counts"] == {"chunks": 5, "sentences": len(loaded.sentences), "questions": 0}
    assert _live_collection(milvus_settings) == entry["collection"] == milvus_store.collection_name(
        milvus_settings, report.directory.name)
    assert not list(report.directory.glob("*.faiss")), "the vectors are searched in Milvus, not from files"

    faiss_settings = tiny_settings.replace(index_dir=tmp_path / "faiss-index")
    build_index(faiss_settings, embedder)
    exact = index_store.load(faiss_settings)
    for question in QUESTIONS:
        vector = embedder.encode_one(question)
        for table in ("chunks", "sentences"):
            ids, scores = getattr(loaded.stores, table).search(vector, 4)
            want_ids, want_scores = getattr(exact.stores, table).search(vector, 4)
            assert list(ids) == list(want_ids), (question, table)
            np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    on_milvus = Engine(milvus_settings, embedder, loaded)
    on_faiss = Engine(faiss_settings, embedder, exact)
    for question in QUESTIONS:
        a, b = on_milvus.ask(question), on_faiss.ask(question)
        assert (a.found, a.answer) == (b.found, b.answer), question
        assert [(p.source, p.section, p.text) for p in a.passages] == [(p.source, p.section, p.text)
                                                                        for p in b.passages]
    assert on_milvus.ask("what forms does naloxone come in").answer_source.source == "alpha.txt"


def test_a_rebuild_switches_the_alias_and_prunes_old_collections(milvus_settings, embedder):
    names = []
    for number in range(3):
        (milvus_settings.corpus_dir / "beta.txt").write_text(f"Beta\n\nSection\n\nFact {number} about ketamine.\n")
        build_index(milvus_settings, embedder)
        names.append(index_store.load(milvus_settings).manifest["store"]["collection"])
        assert _live_collection(milvus_settings) == names[-1]
    assert len(set(names)) == 3, "one collection per generation"
    left = set(milvus_store.client(milvus_settings).list_collections())
    assert left == set(names[-2:]), "the live generation and the one before it are kept, older ones dropped"
    engine = Engine.open(milvus_settings, build="never", embedder=embedder)
    assert "Fact 2" in engine.ask("which fact about ketamine is there").passages[0].text


@pytest.mark.parametrize("moment", ["insert", "publish"])
def test_an_interrupted_build_leaves_the_alias_and_the_index_live(milvus_settings, embedder, monkeypatch, moment):
    build_index(milvus_settings, embedder)
    live = _live_collection(milvus_settings)
    (milvus_settings.corpus_dir / "delta.txt").write_text("Delta Title\n\nA new sentence about sleep.\n")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C arrived while the new collection was written or switched to

    milvus = milvus_store.client(milvus_settings)
    if moment == "insert":
        monkeypatch.setattr(type(milvus), "insert", crash)
    else:
        monkeypatch.setattr(MilvusBackend, "publish", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index(milvus_settings, embedder)
    monkeypatch.undo()
    assert _live_collection(milvus_settings) == live
    loaded = index_store.load(milvus_settings)
    assert loaded.manifest["store"]["collection"] == live
    assert "delta.txt" not in {c.source for c in loaded.chunks}
    assert len(milvus.list_collections()) == 2, "the half-written collection is still there ..."
    build_index(milvus_settings, embedder)
    fresh = index_store.load(milvus_settings)
    assert "delta.txt" in {c.source for c in fresh.chunks}
    assert set(milvus.list_collections()) == {live, fresh.manifest["store"]["collection"]}, \
        "... until the next build drops it"


def test_the_manifest_and_the_settings_must_name_the_same_store(milvus_settings, tiny_settings, embedder):
    build_index(tiny_settings, embedder)  # faiss
    with pytest.raises(IndexIncompatibleError, match=r"store 'faiss'.*setting store \(QA_STORE\) is 'milvus'"):
        index_store.load(milvus_settings)
    build_index(milvus_settings, embedder)  # rebuilt for Milvus, its vectors reused
    with pytest.raises(IndexIncompatibleError, match="store 'milvus'.*'faiss'"):
        index_store.load(tiny_settings)
    elsewhere = milvus_settings.replace(milvus_uri="http://127.0.0.1:9")
    with pytest.raises(IndexIncompatibleError, match="setting milvus_uri"):
        index_store.load(elsewhere)
    entry = index_store.load(milvus_settings).manifest["store"]
    milvus_store.client(milvus_settings).drop_collection(entry["collection"])
    with pytest.raises(IndexCorruptError, match=entry["collection"] + ".*python -m qa build"):
        index_store.load(milvus_settings)


def test_an_unreachable_milvus_is_named_with_its_setting(tiny_settings, embedder):
    settings = tiny_settings.replace(store="milvus", milvus_uri="http://127.0.0.1:9")
    with pytest.raises(StoreUnavailableError, match="cannot reach Milvus at 'http://127.0.0.1:9'.*milvus_uri"):
        build_index(settings, embedder)
    assert not (settings.index_dir / "CURRENT").exists()


@pytest.mark.slow  # a real build and ask in child processes
def test_the_command_line_builds_and_asks_on_milvus(tmp_path):
    """The README's commands with --store milvus, each its own process on the milvus-lite file."""
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT, write_tiny_corpus
    corpus, index = write_tiny_corpus(tmp_path / "corpus"), tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("QA_STORE", None)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "qa", *args, "--corpus", str(corpus), "--index", str(index)],
                              capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    built = run("build", "--store", "milvus")
    assert built.returncode == 0, built.stderr
    assert "RPC error" not in built.stderr
    asked = run("ask", "--store", "milvus", "--json", "what forms does naloxone come in")
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["found"]
    refused = run("ask", "what forms does naloxone come in")  # the default store: faiss
    assert refused.returncode != 0
    assert "setting store (QA_STORE) is 'faiss'" in refused.stderr and "QA_STORE=faiss python -m qa build" in refused.stderr
