"""What the answer stage needs computed from an index's vectors and tables.

Owns the per-sentence features derived from a generation: the answer vectors (a
sentence's meaning alone and under its section heading, averaged), how generic each
sentence is within its article, the text a sentence is embedded with in its section,
and which article each sentence belongs to. The build (qa/indexing/build.py) uses them to write
a generation and `Index` (qa/indexing/index.py) to derive its fields when loaded.

Limits: pure functions of arrays and chunks; no files, no model. `mean_answer_vectors` and
`context_text` decide what a build stores (changing either needs qa/indexing/index.py's FORMAT_VERSION
bumped); `genericness` and `sentence_owners` are computed again at every load.
"""

from __future__ import annotations

import numpy as np

from qa.reading.chunking import Chunk


def mean_answer_vectors(sentence_vectors: np.ndarray, context_vectors: np.ndarray) -> np.ndarray:
    """Each sentence's meaning alone and under its section heading, averaged."""
    return ((sentence_vectors + context_vectors) / 2).astype(np.float32)


def genericness(answer_vectors: np.ndarray, sentence_chunks: list[list[int]], chunks: list[Chunk]) -> np.ndarray:
    """Per sentence: cosine of its answer vector with the normalised mean of its article's answer vectors."""
    sources = sorted({chunk.source for chunk in chunks})
    number = {source: i for i, source in enumerate(sources)}
    # A sentence in two chunks (the overlap) is in one article: its first chunk says which.
    article = np.array([number[chunks[c[0]].source] if c else -1 for c in sentence_chunks], dtype=np.int64)
    placed = np.flatnonzero(article >= 0)
    result = np.zeros(len(article), dtype=np.float32)
    if len(placed) == 0:
        return result
    # Summing rows per article as one sparse product: np.add.at was far slower at 100k chunks
    # (docs/BENCHMARKS.md, scale).
    # Imported here: the page's own process imports this module but never loads an index, and
    # would pay scipy's import for nothing.
    import scipy.sparse

    membership = scipy.sparse.csr_matrix((np.ones(len(placed), dtype=np.float32), (article[placed], placed)),
                                         shape=(len(sources), len(article)))
    means = np.asarray(membership @ answer_vectors, dtype=np.float32)
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    result[placed] = np.einsum("ij,ij->i", answer_vectors[placed], means[article[placed]])
    return result


def context_text(section: str, sentence: str) -> str:
    """A sentence as read in its section: what answer selection's second vector embeds."""
    return f"{section}: {sentence}"


def sentence_owners(chunks: list[Chunk], chunk_sentence_ids: list[list[int]], count: int) -> list[str]:
    """The article of each sentence: that of the first chunk it is in."""
    owners = [""] * count
    for chunk, ids in zip(chunks, chunk_sentence_ids):
        for sentence in ids:
            owners[sentence] = owners[sentence] or chunk.source
    return owners
