"""Stage 5: a question -> ranked passages (hits), by hybrid retrieval.

Owns: dense search (FAISS inner product over unit vectors = cosine), lexical
search (BM25 over stemmed content words of title + section + passage, via
bm25s), sentence search (a passage ranked by its closest sentence), and their fusion by reciprocal rank (RRF): each retriever's ranking
contributes 1 / (rrf_k + rank). RRF needs no score calibration between the
two, which is why it is used rather than a weighted sum of raw scores.

Every hit carries its fused score (the ranking), its cosine similarity to the
question and its BM25 score, so the answer stage and the page can show why a
passage was chosen.

Limits: the query is embedded as one text; no query expansion or re-ranking
model (none ships offline here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qa.index import Index
from qa.settings import Settings


@dataclass(frozen=True)
class Hit:
    chunk: int  # position in index.chunks
    score: float  # fused reciprocal-rank score: what hits are ranked by
    dense: float  # cosine similarity of question and passage
    lexical: float  # BM25 score; 0 when the passage shares no content word


def dense_candidates(index: Index, query_vector: np.ndarray, depth: int,
                     ef_search: int = 128) -> list[tuple[int, float]]:
    """(chunk, cosine) best first, from FAISS (exact, or HNSW with `ef_search`)."""
    if hasattr(index.dense, "hnsw"):
        index.dense.hnsw.efSearch = max(depth, ef_search)
    scores, ids = index.dense.search(query_vector.reshape(1, -1).astype(np.float32), depth)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]


def sentence_candidates(index: Index, query_vector: np.ndarray, depth: int,
                        ef_search: int = 128) -> list[tuple[int, float]]:
    """(chunk, best sentence cosine) best first: a passage is as close as its closest sentence.

    A short factual question often matches one sentence much better than the
    whole passage that dilutes it; this ranking catches those.
    """
    # Enough sentences to fill `depth` chunks even when several share a chunk.
    pool = min(len(index.sentences), depth * 8)
    if pool == 0:
        return []
    if hasattr(index.sentence_dense, "hnsw"):
        index.sentence_dense.hnsw.efSearch = max(pool, ef_search)
    scores, ids = index.sentence_dense.search(query_vector.reshape(1, -1).astype(np.float32), pool)
    best: dict[int, float] = {}
    for sentence, similarity in zip(ids[0], scores[0]):
        if sentence < 0:
            break
        for chunk in index.sentence_chunks[int(sentence)]:
            if chunk not in best:
                best[chunk] = float(similarity)
        if len(best) >= depth:
            break
    return sorted(best.items(), key=lambda item: -item[1])[:depth]


def lexical_candidates(index: Index, query_terms: list[str], depth: int) -> list[tuple[int, float]]:
    """(chunk, BM25) best first; only passages sharing at least one term."""
    known = [t for t in query_terms if t in index.vocabulary]
    if not known:
        return []
    scores = index.lexical.get_scores(known)
    depth = min(depth, len(scores))
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top if scores[i] > 0]


def search(index: Index, query_vector: np.ndarray, query_terms: list[str], settings: Settings,
           k: int | None = None) -> list[Hit]:
    """The `k` best passages for a query, fused from dense and lexical rankings."""
    k = k or settings.top_k
    depth = min(settings.candidates, len(index.chunks))
    if depth == 0:
        return []
    dense = dense_candidates(index, query_vector, depth, settings.hnsw_ef_search)
    lexical = lexical_candidates(index, query_terms, depth)
    sentences = sentence_candidates(index, query_vector, depth, settings.hnsw_ef_search)
    fused: dict[int, float] = {}
    for ranking in (dense, lexical, sentences):
        for rank, (chunk, _) in enumerate(ranking):
            fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (settings.rrf_k + rank + 1)
    dense_score = dict(dense)
    lexical_score = dict(lexical)
    best = sorted(fused, key=lambda c: (-fused[c], c))[:k]
    hits = []
    for chunk in best:
        cosine = dense_score.get(chunk)
        if cosine is None:  # found by BM25 only: its cosine is one dot product away
            cosine = float(index.chunk_vectors[chunk] @ query_vector)
        hits.append(Hit(chunk, fused[chunk], cosine, lexical_score.get(chunk, 0.0)))
    return hits
