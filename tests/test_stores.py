"""What a loaded index computes without the libraries its build used: the same numbers, to the bit.

Answering loads an index without importing bm25s or scipy (their imports cost a cold `qa ask` a
tenth of a second). These tests hold the replacements to the libraries' own results: BM25 scores
against bm25s's `get_scores` on the seed articles, the per-article means of `genericness` against
scipy's sparse product, and the stamp that spares re-reading a model file against a fresh hash.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import bm25s
import numpy as np
import pytest
import scipy.sparse

from conftest import CORPUS
from qa import files
from qa.indexing.features import genericness
from qa.indexing.stores import LexicalStore
from qa.reading.text import content_terms
from qa.settings import Settings


def seed_documents() -> list[list[str]]:
    paragraphs = []
    for path in sorted(CORPUS.glob("*.txt")):
        paragraphs += [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    return [content_terms(p) for p in paragraphs]


def seed_questions() -> list[str]:
    return [json.loads(line)["question"] for path in sorted((CORPUS / "questions").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_lexical_scores_are_bm25s_s_to_the_bit(tmp_path):
    documents = seed_documents()
    LexicalStore.build(documents, Settings().bm25_k1, Settings().bm25_b).save(tmp_path)
    ours, theirs = LexicalStore.load(tmp_path), bm25s.BM25.load(str(tmp_path), show_progress=False)
    rng = np.random.default_rng(0)
    words = sorted(w for w in theirs.vocab_dict if w)  # bm25s also lists "", which it cannot score
    assert not ours.scores([""], len(documents)).any()
    asked = 0
    for number, question in enumerate(seed_questions()):
        # Real questions, some with a repeated word, an unknown word and indexed words added.
        terms = content_terms(question) + [words[i] for i in rng.integers(len(words), size=number % 4)]
        terms += terms[:number % 2] + ["zzunknownzz"]
        known = [t for t in terms if t in theirs.vocab_dict]
        if not known:
            assert not ours.scores(terms, len(documents)).any()
            continue
        expected = theirs.get_scores(known)
        got = ours.scores(terms, len(documents))
        assert got.dtype == expected.dtype and np.array_equal(got, expected), question
        asked += 1
    assert asked > 300
    frequency = np.diff(theirs.scores["indptr"])
    documents_count = theirs.scores["num_docs"]
    assert ours.idf == {t: float(np.log(1 + (documents_count - frequency[i] + 0.5) / (frequency[i] + 0.5)))
                        for t, i in theirs.vocab_dict.items() if i < len(frequency)}
    assert ours.vocabulary == frozenset(theirs.vocab_dict)


def test_bm25_parameters_reach_the_store_and_its_scores(tmp_path):
    """k1 and b (Settings.bm25_k1, bm25_b) are bm25s's: the loaded store scores as bm25s built with them does,
    and b is the length normalisation: at 0 a short passage and a long one holding the word once score alike,
    at bm25s's 0.75 the short one scores higher (the remainder passage that outranked the answer)."""
    documents = [["naloxon", "revers"], ["naloxon"] + [f"filler{i}" for i in range(30)]] + [["other"]] * 3
    for k1, b in ((0.75, 0.5), (1.2, 0.0)):
        folder = tmp_path / f"{k1}-{b}"
        LexicalStore.build(documents, k1, b).save(folder)
        theirs = bm25s.BM25.load(str(folder), show_progress=False)
        assert (theirs.k1, theirs.b) == (k1, b)
        assert np.array_equal(LexicalStore.load(folder).scores(["naloxon"], len(documents)),
                              theirs.get_scores(["naloxon"]))
    flat = LexicalStore.build(documents, 1.2, 0.0).scores(["naloxon"], len(documents))
    assert flat[0] == pytest.approx(flat[1]) and flat[0] > 0
    normalised = LexicalStore.build(documents, 1.2, 0.75).scores(["naloxon"], len(documents))
    assert normalised[0] > normalised[1] > 0


def test_a_loaded_lexical_store_is_not_saved_again(tmp_path):
    LexicalStore.build([["naloxon"], ["ketamin"]], Settings().bm25_k1, Settings().bm25_b).save(tmp_path / "a")
    with pytest.raises(ValueError):
        LexicalStore.load(tmp_path / "a").save(tmp_path / "b")


def scipy_genericness(answer_vectors, sentence_chunks, chunks) -> np.ndarray:
    """The computation before: one sparse product sums each article's rows."""
    sources = sorted({chunk.source for chunk in chunks})
    number = {source: i for i, source in enumerate(sources)}
    article = np.array([number[chunks[c[0]].source] if c else -1 for c in sentence_chunks], dtype=np.int64)
    placed = np.flatnonzero(article >= 0)
    result = np.zeros(len(article), dtype=np.float32)
    membership = scipy.sparse.csr_matrix((np.ones(len(placed), dtype=np.float32), (article[placed], placed)),
                                         shape=(len(sources), len(article)))
    means = np.asarray(membership @ answer_vectors, dtype=np.float32)
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    result[placed] = np.einsum("ij,ij->i", answer_vectors[placed], means[article[placed]])
    return result


@pytest.mark.parametrize("sentences, articles", [(40, 1), (700, 9), (20_000, 400)])
def test_genericness_is_scipy_s_to_the_bit(sentences, articles):
    rng = np.random.default_rng(sentences)
    vectors = rng.standard_normal((sentences, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # Articles of uneven sizes, some with chunks but no sentence, some sentences in no chunk.
    chunks = [SimpleNamespace(source=f"article-{int(rng.zipf(1.5)) % (articles + 2)}")
              for _ in range(max(2, sentences // 4))]
    sentence_chunks = [[] if rng.random() < 0.03 else [int(rng.integers(len(chunks)))] for _ in range(sentences)]
    assert np.array_equal(genericness(vectors, sentence_chunks, chunks),
                          scipy_genericness(vectors, sentence_chunks, chunks))


def test_a_stamped_checksum_is_trusted_only_while_the_file_is_untouched(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"weights " * 1000)
    first = files.stamped_sha256(path)
    assert first == files.sha256_file(path)
    assert (tmp_path / f"model.onnx{files.STAMP_SUFFIX}").is_file()

    hashed = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: hashed.append(p) or real(p))
    assert files.stamped_sha256(path) == first and hashed == []  # untouched: not read again

    before = os.stat(path)
    with open(path, "r+b") as handle:  # one byte altered, the size kept
        handle.seek(100)
        handle.write(b"W")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with its old mtime put back
    assert files.stamped_sha256(path) == real(path) != first and len(hashed) == 1

    os.chmod(tmp_path, 0o500)  # a folder the stamp cannot be written to: hashed every time, still right
    try:
        path.touch()
        assert files.stamped_sha256(path) == real(path)
        assert files.stamped_sha256(path) == real(path)
    finally:
        os.chmod(tmp_path, 0o700)


def test_a_remembered_checksum_is_trusted_only_while_the_file_is_untouched(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"weights " * 1000)
    hashed = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: hashed.append(p) or real(p))
    first = files.remembered_sha256(path)
    assert first == real(path) and len(hashed) == 1
    assert files.remembered_sha256(path) == first and len(hashed) == 1  # untouched: not read again
    assert list(tmp_path.iterdir()) == [path]  # nothing written beside it

    before = os.stat(path)
    with open(path, "r+b") as handle:  # one byte altered, the size and the mtime kept
        handle.seek(100)
        handle.write(b"W")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert files.remembered_sha256(path) == real(path) != first and len(hashed) == 2
