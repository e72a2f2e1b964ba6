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
    # Each article's rows summed in their order, one row after another (numpy's sum down the rows of a
    # 2-D array), as scipy's sparse product summed them: the same bits (tests/test_stores.py checks),
    # without importing scipy at every index load. np.add.at was far slower at 100k chunks
    # (docs/BENCHMARKS.md, scale); one sum per article is not.
    grouped = placed[np.argsort(article[placed], kind="stable")]  # by article, in row order within each
    owners, starts = np.unique(article[grouped], return_index=True)
    means = np.zeros((len(sources), answer_vectors.shape[1]), dtype=np.float32)
    for owner, start, end in zip(owners, starts, [*starts[1:], len(grouped)]):
        means[owner] = answer_vectors[grouped[start:end]].sum(axis=0)
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    result[placed] = np.einsum("ij,ij->i", answer_vectors[placed], means[article[placed]])
    return result


def context_text(section: str, sentence: str) -> str:
    """A sentence as read in its section: what answer selection's second vector embeds."""
    return f"{section}: {sentence}"


def subject_of(title: str, section: str) -> str:
    """The text a passage's subject is read from (answer choice's token match, qa/answering/token_match.py):
    its article's title and its section's heading. The build stores its token vectors."""
    return f"{title}. {section}" if section and section != title else title


def sentence_owners(chunks: list[Chunk], chunk_sentence_ids: list[list[int]], count: int) -> list[str]:
    """The article of each sentence: that of the first chunk it is in."""
    owners = [""] * count
    for chunk, ids in zip(chunks, chunk_sentence_ids):
        for sentence in ids:
            owners[sentence] = owners[sentence] or chunk.source
    return owners
