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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
    """BM25 over each passage's stemmed content words: every passage's score for a query, and each word's
    idf, which answer choice weighs shared words by.

    Built and saved by bm25s. Read back here from bm25s's own files (its parameters, vocabulary and
    term-major score matrix) and scored as bm25s's `get_scores` scores, with the same arrays in the same
    order, so the scores are bm25s's to the bit (tests/test_stores.py checks). Why not bm25s itself at
    load: importing it imports scipy.sparse and tqdm, a sixth of a cold `qa ask`, for a sum numpy does.
    """

    # bm25s's file names in the folder it saves to.
    PARAMS, VOCAB = "params.index.json", "vocab.index.json"
    ARRAYS = {"data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy"}
    NONOCCURRENCE = "nonoccurrence_array.index.npy"  # only the BM25L and BM25+ variants have one

    def __init__(self, vocabulary: dict[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 documents: int, dtype: str = "float32", int_dtype: str = "int32",
                 nonoccurrence: np.ndarray | None = None) -> None:
        self.token_ids = vocabulary
        self.vocabulary = frozenset(vocabulary)
        self.data, self.indices, self.indptr = data, indices, indptr
        self.documents = documents
        self.dtype, self.int_dtype = np.dtype(dtype), np.dtype(int_dtype)
        self.nonoccurrence = nonoccurrence
        self.idf = _idf(vocabulary, indptr, documents)
        self._bm25 = None  # the bm25s index a build made, which `save` writes

    @classmethod
    def build(cls, documents: list[list[str]], k1: float, b: float) -> "LexicalStore":
        """The store of `documents` (each its stemmed terms), scored with BM25's `k1` and `b` (Settings.bm25_k1,
        bm25_b)."""
        import bm25s  # at build time only: its import brings scipy

        bm25 = bm25s.BM25(k1=k1, b=b)
        bm25.index([terms or ["_empty_"] for terms in documents], show_progress=False)
        store = cls(bm25.vocab_dict, bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"],
                    int(bm25.scores["num_docs"]), bm25.dtype, bm25.int_dtype, bm25.nonoccurrence_array)
        store._bm25 = bm25
        return store

    def save(self, folder: Path) -> None:
        """Write the store as bm25s saves it (a store that was built, not loaded)."""
        if self._bm25 is None:
            raise ValueError("only a lexical store just built is saved; a loaded one is already on disk")
        self._bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "LexicalStore":
        folder = Path(folder)
        params = json.loads((folder / cls.PARAMS).read_text(encoding="utf-8"))
        vocabulary = json.loads((folder / cls.VOCAB).read_text(encoding="utf-8"))
        arrays = {name: np.load(folder / file, allow_pickle=False) for name, file in cls.ARRAYS.items()}
        nonoccurrence = None
        if params.get("method") in ("bm25l", "bm25+"):
            nonoccurrence = np.load(folder / cls.NONOCCURRENCE, allow_pickle=False)
        return cls(vocabulary, arrays["data"], arrays["indices"], arrays["indptr"], int(params["num_docs"]),
                   params.get("dtype", "float32"), params.get("int_dtype", "int32"), nonoccurrence)

    def scores(self, terms: list[str], count: int) -> np.ndarray:
        """Every one of the `count` passages' BM25 score (all zero when no term is indexed)."""
        columns = len(self.indptr) - 1  # bm25s's vocabulary also names "", which has no column (bm25s raises)
        ids = np.asarray([i for i in (self.token_ids.get(t, columns) for t in terms) if i < columns],
                         dtype=self.int_dtype)
        if not len(ids):
            return np.zeros(count, dtype=np.float32)
        # bm25s's sum (its `_compute_relevance_from_scores`): each term's column added in query order.
        starts, ends = self.indptr[ids], self.indptr[ids + 1]
        scores = np.zeros(self.documents, dtype=self.dtype)
        for start, end in zip(starts, ends):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        if self.nonoccurrence is not None:
            scores += self.nonoccurrence[ids].sum()
        return scores


def _idf(vocabulary: dict[str, int], indptr: np.ndarray, documents: int) -> dict[str, float]:
    """Term -> BM25 idf, from the term-major score matrix's column lengths (no pass over the texts)."""
    frequency = np.diff(np.asarray(indptr))
    return {term: float(np.log(1 + (documents - frequency[i] + 0.5) / (frequency[i] + 0.5)))
            for term, i in vocabulary.items() if i < len(frequency)}


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
