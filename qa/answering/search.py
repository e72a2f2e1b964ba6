"""Stage 5: a question -> ranked passages (hits), by hybrid retrieval.

Owns: four retrievers and their fusion. The retrievers look candidates up in
the index's stores (qa/indexing/stores.py: FAISS or Milvus, exact or HNSW), which this
module never asks which they are:
- dense: inner product of the question with each passage (unit vectors,
  so cosine);
- sentence: a passage is as close as its closest sentence, which catches a
  short question that matches one sentence of a long passage;
- lexical: BM25 over stemmed content words of title + section + passage (bm25s);
- example questions: a passage is as close as the closest example question
  of the question bank (qa/models/question_bank.py) answered in it, since MiniLM
  matches a question with another question far better than with its answer.
Each retriever proposes its `candidates` best passages. Every passage in the
union then gets all four scores exactly (a dot product or a lookup each, so
a passage one retriever missed is not punished for it), and is ranked by

    weight_dense * cosine + weight_sentence * best sentence cosine
        + weight_lexical * BM25 / (best BM25 of this question)
        + weight_question * best example-question cosine (0 when below 0),

the last term normalised per article (`example_lifts`, Settings.example_lift_cap): inside an
article it ranks as the cosine does, but an article is lifted above another only up to its
own best sentence plus the cap, and beside articles with example questions one without them
is lifted by its own best sentence, so articles a maintainer adds compete on equal terms.

This convex combination replaced reciprocal rank fusion: on the dev set it
ranked better (docs/history.md, second session), because RRF gave a
passage that two retrievers put first less than one that all three put
twentieth.

Every hit carries its fused score (the ranking) and the three scores it was
fused from, so the answer stage can judge how well the articles match the
question at all, and the page can show why a passage was chosen. `search()`
returns every candidate, best first: the page shows the first few, refusal
looks at the best of each score over all of them.

Limits: the query is embedded as one text; no re-ranking model (none ships
offline here). The weights were fitted on one small question set.
"""

from __future__ import annotations

from typing import Collection, NamedTuple, Sequence

import numpy as np

from qa.indexing.index import Index
from qa.settings import Settings


class Hit(NamedTuple):
    """A candidate passage and its scores (a named tuple: fusion makes several dozen a question)."""

    chunk: int  # position in index.chunks
    score: float  # fused score: what hits are ranked by
    dense: float  # cosine similarity of question and passage
    sentence: float  # cosine similarity of question and the passage's closest sentence (answer vectors)
    example: float  # cosine similarity of question and the closest example question answered here, or 0
    lexical: float  # BM25 score; 0 when the passage shares no content word


def dense_candidates(index: Index, query_vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """(chunk, cosine) best first, from the chunk store."""
    ids, scores = index.stores.chunks.search(query_vector, depth)
    return [(int(i), float(s)) for i, s in zip(ids, scores)]


def sentence_candidates(index: Index, query_vector: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """(chunk, best sentence cosine) best first: a passage is as close as its closest sentence.

    A short factual question often matches one sentence much better than the
    whole passage that dilutes it; this ranking catches those.
    """
    # Enough sentences to fill `depth` chunks even when several share a chunk.
    pool = min(len(index.sentences), depth * 8)
    if pool == 0:
        return []
    ids, scores = index.stores.sentences.search(query_vector, pool)
    best: dict[int, float] = {}
    for sentence, similarity in zip(ids, scores):
        for chunk in index.sentence_chunks[int(sentence)]:
            if chunk not in best:
                best[chunk] = float(similarity)
        if len(best) >= depth:
            break
    return sorted(best.items(), key=lambda item: -item[1])[:depth]


def lexical_scores(index: Index, query_terms: list[str]) -> np.ndarray:
    """Every passage's BM25 score for the query's terms (all zero when none is indexed)."""
    return index.stores.lexical.scores(query_terms, len(index.chunks))


def lexical_candidates(scores: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """(chunk, BM25) best first; only passages sharing at least one term."""
    depth = min(depth, len(scores))
    if depth == 0:
        return []
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.argsort(-scores[top], kind="stable")]
    return [(int(i), float(scores[i])) for i in top if scores[i] > 0]


def example_similarities(index: Index, query_vector: np.ndarray) -> np.ndarray:
    """Per example question: its cosine with the query (0 when below 0). Computed once per query vector;
    the per-sentence and per-chunk scores below are read from it."""
    similarities = np.zeros(len(index.questions), dtype=np.float32)
    if len(index.questions):
        # The store proposes the example questions (all of them: a bank is written by people, so small);
        # their cosines are computed here from the vectors, the same whichever store proposed them.
        store = index.stores.questions
        if store.kind == "flat" and store.size == len(index.questions):
            proposed = slice(None)  # an exact search for all of them proposes all of them: not asked
        else:
            proposed = np.sort(store.search(query_vector, len(index.questions))[0])
        # One product over the whole bank, then the proposed rows: copying the proposed rows out first
        # cost more than the product itself.
        similarities[proposed] = np.maximum((index.question_vectors @ query_vector)[proposed], 0.0)
    return similarities


def example_scores_by_sentence(index: Index, similarities: np.ndarray) -> np.ndarray:
    """Per sentence: cosine of the closest example question it answers (0 if none, or below 0)."""
    return _best_example(similarities, index.question_links, len(index.sentences))


def example_scores_by_chunk(index: Index, similarities: np.ndarray) -> np.ndarray:
    """Per chunk: cosine of the closest example question answered in it (0 if none, or below 0)."""
    return _best_example(similarities, index.question_chunk_links, len(index.chunks))


def _best_example(similarities: np.ndarray, links: tuple[np.ndarray, np.ndarray], size: int) -> np.ndarray:
    best = np.zeros(size, dtype=np.float32)
    question, target = links
    np.maximum.at(best, target, similarities[question])
    return best


def example_lifts(examples: Sequence[float], texts: Sequence[float], articles: Sequence[str],
                  with_examples: Collection[str], cap: float | None) -> list[float]:
    """What the example questions add to each candidate (a passage or a sentence), before their weight.

    `examples`: each candidate's closest example question's cosine; `texts`: its own best sentence cosine;
    `articles`: its article; `with_examples`: the articles that have example questions.

    `cap` None: the example cosine as it is. An article with example questions then starts every contest
    with an article without them about 2 x 0.6 ahead, and answers questions about it (issue 24).

    Else an article's example questions still rank its own candidates as they did (`example - the
    article's best example`), but the article as a whole is lifted by its best example only up to its own
    best text plus `cap`; when articles with and without example questions compete, an article without
    them is lifted by its own best text, the same footing. With no article with example questions among the
    candidates, nothing changes.
    """
    if cap is None:
        return list(examples)
    best_example: dict[str, float] = {}
    best_text: dict[str, float] = {}
    for example, text, article in zip(examples, texts, articles):
        best_example[article] = max(best_example.get(article, 0.0), example)
        best_text[article] = max(best_text.get(article, -1.0), text)
    mixed = any(a in with_examples for a in best_text) and not all(a in with_examples for a in best_text)
    level = {article: (min(best_example[article], best_text[article] + cap) if article in with_examples
                       else best_text[article] if mixed else 0.0) for article in best_text}
    return [example - best_example[article] + level[article] if article in with_examples else level[article]
            for example, article in zip(examples, articles)]


def example_candidates(by_chunk: np.ndarray, depth: int) -> list[tuple[int, float]]:
    """(chunk, example-question cosine) best first; only chunks with an example question."""
    return lexical_candidates(by_chunk, depth)  # the same top-k of a score array


def search(index: Index, query_vector: np.ndarray, query_terms: list[str], settings: Settings,
           similarities: np.ndarray | None = None) -> list[Hit]:
    """Every candidate passage for a query, best first, fused from the four retrievers' scores.

    `similarities`: example_similarities of the query vector, computed here if not given."""
    depth = min(settings.candidates, len(index.chunks))
    if depth == 0:
        return []
    bm25 = lexical_scores(index, query_terms)
    if similarities is None:
        similarities = example_similarities(index, query_vector)
    by_chunk = example_scores_by_chunk(index, similarities)
    proposed = (dense_candidates(index, query_vector, depth),
                sentence_candidates(index, query_vector, depth),
                lexical_candidates(bm25, depth),
                example_candidates(by_chunk, depth))
    return fuse(index, query_vector, bm25, proposed, settings, by_chunk)


def fuse(index: Index, query_vector: np.ndarray, bm25: np.ndarray,
         proposed: tuple[list[tuple[int, float]], ...], settings: Settings,
         by_chunk: np.ndarray | None = None) -> list[Hit]:
    """All proposed passages, best first, by the weighted sum of their four scores.

    `by_chunk`: each chunk's example-question score (example_scores_by_chunk), computed here if not given.
    """
    if by_chunk is None:
        by_chunk = example_scores_by_chunk(index, example_similarities(index, query_vector))
    candidates = sorted({chunk for ranking in proposed for chunk, _ in ranking})
    if not candidates:
        return []
    # One matrix product each for the passages and for all their sentences; each passage's best sentence is
    # a max over its run of the products (a passage without sentences counts its own cosine).
    cosines = index.chunk_vectors[candidates] @ query_vector
    sentence_ids = [index.chunk_sentence_ids[c] for c in candidates]
    counts = np.fromiter((len(ids) for ids in sentence_ids), dtype=np.int64, count=len(candidates))
    sentences = cosines.copy()
    if counts.any():
        similarities = _sentence_cosines(index, [i for ids in sentence_ids for i in ids], query_vector)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        held = counts > 0
        sentences[held] = np.maximum.reduceat(similarities, starts[held])
    lexical = bm25[candidates]
    best_bm25 = float(lexical.max()) or 1.0
    cosines, sentences, lexical = cosines.tolist(), sentences.tolist(), lexical.tolist()
    examples = by_chunk[candidates].tolist()
    lifts = example_lifts(examples, sentences, [index.chunks[c].source for c in candidates],
                          index.articles_with_examples, settings.example_lift_cap)
    weight_dense, weight_sentence = settings.weight_dense, settings.weight_sentence
    weight_lexical, weight_question = settings.weight_lexical, settings.weight_question
    hits = [Hit(chunk, weight_dense * cosine + weight_sentence * sentence + weight_lexical * lex / best_bm25
                + weight_question * lift, cosine, sentence, example, lex)
            for chunk, cosine, sentence, lex, example, lift
            in zip(candidates, cosines, sentences, lexical, examples, lifts)]
    hits.sort(key=lambda hit: (-hit.score, hit.chunk))
    return hits


# Fusion computes the cosines of all of an index's sentences, rather than copying out the candidates' rows, when
# the candidates hold at least 1 / SHARE_FOR_ALL of them: on the seed index a product reads a row in 0.03 us,
# a copy of a few hundred rows takes over 1 us a row with the mapping of its fresh pages (docs/BENCHMARKS.md,
# latency). Speed, not answers: both give the same cosines.
SHARE_FOR_ALL = 8


def _sentence_cosines(index: Index, sentence_ids: list[int], query_vector: np.ndarray) -> np.ndarray:
    """The cosines of these sentences' answer vectors with the query. Copying a few hundred rows out makes a
    block that glibc maps afresh from the system for every question (qa/__init__.py's malloc thresholds), so
    for a large share of a small index's sentences one product over all of them is cheaper."""
    if len(sentence_ids) * SHARE_FOR_ALL >= len(index.sentences):
        return (index.answer_vectors @ query_vector)[sentence_ids]
    return index.answer_vectors[sentence_ids] @ query_vector
