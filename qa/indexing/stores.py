"""The retrieval stores: where a question's nearest passages, sentences and example questions, and its
BM25 scores, are looked up. Two backends behind one small interface, chosen in one place.

An index generation has four stores (`Stores`):
    chunks      vectors of the passages          -> the dense retriever
    sentences   vectors of the sentences         -> the sentence retriever
    questions   vectors of the example questions -> the example-question retriever
    lexical     BM25 over the passages' stemmed content words (bm25s)

A vector store answers one call, `search(vector, k) -> (ids, scores)`, best first, ids being row
numbers of the table it was built from (chunks.jsonl, sentences.jsonl, questions.jsonl). Search
proposes candidates only: fusion, answer choice and refusal re-score every candidate from the
vectors the index holds in memory (qa/answering/search.py), so they never see which backend ran.

A backend (qa/indexing/backends.py's `backend(settings)`, the one place it is chosen, by `Settings.store`) builds the vector
stores of a generation while it is written, opens them when it is loaded, makes a new generation
the live one, and removes what old generations left:
    "faiss"   FAISS indexes in files of the generation's folder (dense.faiss, sentences.faiss,
              questions.faiss): the default, everything in the process.
    "milvus"  one Milvus collection per generation (qa/indexing/milvus_store.py): a milvus-lite file in the
              index folder, or a server or cluster at `Settings.milvus_uri`.
The lexical store is bm25s in the generation's folder on both (why: docs/SCALING.md).

Exact (flat) search or HNSW is chosen in one place too: `dense_kind`, by the number of vectors.

Limits: a store is written once, in a build, and read after; nothing is added to a live one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import bm25s
import faiss
import numpy as np

from qa.settings import Settings

LEXICAL_FOLDER = "lexical"


def dense_kind(count: int, settings: Settings) -> str:
    """"flat" (exact) while exact search is fast enough, "hnsw" beyond `settings.flat_max_vectors`."""
    return "flat" if count <= settings.flat_max_vectors else "hnsw"


class VectorStore(Protocol):
    kind: str  # "flat" (exact) or "hnsw"
    size: int  # vectors held

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` rows nearest `vector` by inner product, best first: (row ids, scores)."""
        ...


class FaissStore:
    """A FAISS inner-product index over one table's vectors, in one file."""

    def __init__(self, index: faiss.Index, kind: str, ef_search: int) -> None:
        self.index, self.kind, self.ef_search = index, kind, ef_search
        self.size = index.ntotal

    @classmethod
    def build(cls, vectors: np.ndarray, settings: Settings) -> "FaissStore":
        kind = dense_kind(len(vectors), settings)
        if kind == "flat":
            index = faiss.IndexFlatIP(vectors.shape[1])
        else:
            index = faiss.IndexHNSWFlat(vectors.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = settings.hnsw_ef_construction
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, kind, settings.hnsw_ef_search)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str, settings: Settings) -> "FaissStore":
        return cls(faiss.read_index(str(path)), kind, settings.hnsw_ef_search)

    def search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(k, self.ef_search)
        scores, ids = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k)
        found = ids[0] >= 0
        return ids[0][found].astype(np.int64), scores[0][found]


class LexicalStore:
    """BM25 (bm25s) over each passage's stemmed content words: every passage's score for a query,
    and each word's idf, which answer choice weighs shared words by."""

    def __init__(self, bm25: bm25s.BM25) -> None:
        self.bm25 = bm25
        self.vocabulary = frozenset(bm25.vocab_dict)
        self.idf = _idf(bm25)

    @classmethod
    def build(cls, documents: list[list[str]]) -> "LexicalStore":
        bm25 = bm25s.BM25()
        bm25.index([terms or ["_empty_"] for terms in documents], show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalStore":
        return cls(bm25s.BM25.load(str(folder), show_progress=False))

    def scores(self, terms: list[str], count: int) -> np.ndarray:
        """Every one of the `count` passages' BM25 score (all zero when no term is indexed)."""
        known = [t for t in terms if t in self.vocabulary]
        if not known:
            return np.zeros(count, dtype=np.float32)
        return self.bm25.get_scores(known)


def _idf(bm25: bm25s.BM25) -> dict[str, float]:
    """Term -> BM25 idf, from bm25s's term-major score matrix (no pass over the texts)."""
    indptr = np.asarray(bm25.scores["indptr"])
    documents = int(bm25.scores["num_docs"])
    frequency = np.diff(indptr)
    return {term: float(np.log(1 + (documents - frequency[i] + 0.5) / (frequency[i] + 0.5)))
            for term, i in bm25.vocab_dict.items() if i < len(frequency)}


@dataclass
class Stores:
    """The four stores of one loaded generation."""

    chunks: VectorStore
    sentences: VectorStore
    questions: VectorStore
    lexical: LexicalStore


@dataclass(frozen=True)
class Tables:
    """The vectors a build gives the stores, one row per row of its table."""

    chunks: np.ndarray
    sentences: np.ndarray
    questions: np.ndarray


class Backend(Protocol):
    name: str

    def write(self, tables: Tables, folder: Path, generation: str) -> dict:
        """Build the vector stores of a new generation (files into `folder`, or elsewhere); the manifest's
        "store" entry, which `open` reads back. Nothing becomes live here."""
        ...

    def open(self, entry: dict, folder: Path) -> tuple[VectorStore, VectorStore, VectorStore]:
        """The chunk, sentence and question stores of a generation; IndexCorruptError when missing."""
        ...

    def publish(self, entry: dict) -> None:
        """Make the generation of `entry` the live one in the backend too (before CURRENT names it)."""
        ...

    def prune(self, keep: list[dict]) -> None:
        """Remove what generations other than those of the `keep` entries left (killed builds too)."""
        ...


class FaissBackend:
    """Everything in files of the generation's folder: the folder's swap is the publication."""

    name = "faiss"
    FILES = {"chunks": "dense.faiss", "sentences": "sentences.faiss", "questions": "questions.faiss"}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def write(self, tables: Tables, folder: Path, generation: str) -> dict:
        kinds = {}
        for name, file in self.FILES.items():
            store = FaissStore.build(getattr(tables, name), self.settings)
            store.save(folder / file)
            kinds[name] = store.kind
        return {"backend": self.name, "kinds": kinds, "files": self.FILES}

    def open(self, entry: dict, folder: Path) -> tuple[VectorStore, VectorStore, VectorStore]:
        stores = tuple(FaissStore.load(folder / self.FILES[name], entry["kinds"][name], self.settings)
                       for name in ("chunks", "sentences", "questions"))
        return stores  # type: ignore[return-value]

    def publish(self, entry: dict) -> None:
        pass  # the generation's folder holds the stores: pointing CURRENT at it publishes them

    def prune(self, keep: list[dict]) -> None:
        pass  # removed with their generation's folder


__all__ = ["Backend", "FaissBackend", "FaissStore", "LexicalStore", "Stores", "Tables", "VectorStore", "dense_kind"]
