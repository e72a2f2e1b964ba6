"""Answer choice's token match: does a sentence hold what the question asks beyond its passage's subject?

Owns one score per candidate sentence, read from the question model's
contextual token vectors (before pooling; qa/models/onnx_model.py's
"token_embeddings" output), late interaction as in ColBERT: for each word
piece of the question, its best cosine with any word piece of the sentence,
averaged over the question's pieces. The average is weighted:
- by the idf of the piece's word in the index (stopwords weigh nothing), so
  rare words count more, as in the lexical overlap bonus;
- by how little the passage's subject (its article title and section heading)
  already matches the piece: (1 - best cosine with the subject's pieces) **
  `token_match_focus`. A question's pieces that only name the section's subject
  ("3D scanner", "body fat" under "3-D Body Scanners") match every sentence of
  the section, and most of all the one that restates the subject; the pieces
  left ("figure out", "only sees the outside") are what the question asks about it.

Why: a pooled cosine compares one vector per text, so a sentence that restates
the subject scores close to the question whatever the question asks about it;
reading the two texts' tokens against each other sees which words of the
question a sentence answers (docs/QUALITY.md, "Token match").

Also owns the other direction, `restatement`: how much of a sentence only
says again what the question and its passage's subject say (each sentence
piece's best cosine with their pieces, averaged). A sentence that restates
what the question is about tells the reader nothing new; answer choice
subtracts `restatement_penalty` x this from every candidate
(docs/QUALITY.md, "Restatement").

Limits: the model reads each text alone (no cross-attention), so this is
similarity of words in context, not understanding; a question whose every
word names its passage's subject falls back to plain idf weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from qa.indexing.features import subject_of  # the build stores its token vectors
from qa.models.onnx_model import TokenVectors
from qa.reading.text import STOPWORDS, content_terms


def question_weights(question: TokenVectors, idf: dict[str, float], rarest: float) -> np.ndarray:
    """Each question piece's weight: its word's idf (a word the index never saw weighs `rarest`),
    0 for stopwords; all 1 when no piece is a content word."""
    weights = np.zeros(len(question.words))
    for position, word in enumerate(question.words):
        terms = content_terms(word) if word not in STOPWORDS else []
        if terms:
            weights[position] = idf.get(terms[0], rarest)
    return weights if weights.sum() > 0 else np.ones(len(question.words))


def focus_on_asked(weights: np.ndarray, question: TokenVectors, subject: TokenVectors, power: float) -> np.ndarray:
    """`weights` lowered for the question's pieces that the passage's subject already matches."""
    if power <= 0 or len(subject.vectors) == 0 or len(question.vectors) == 0:
        return weights
    return _focused(weights, (question.vectors @ subject.vectors.T).max(axis=1), power)


def _focused(weights: np.ndarray, covered: np.ndarray, power: float) -> np.ndarray:
    """`weights` lowered by `covered` (each question piece's best cosine with the subject's pieces)."""
    focused = weights * np.clip(1.0 - covered, 0.0, None) ** power
    return focused if focused.sum() > 0 else weights


def late_interaction(question: TokenVectors, weights: np.ndarray, sentence: TokenVectors) -> float:
    """The weighted mean over the question's pieces of each one's best cosine with the sentence's pieces."""
    if len(question.vectors) == 0 or len(sentence.vectors) == 0 or weights.sum() <= 0:
        return 0.0
    best = (question.vectors @ sentence.vectors.T).max(axis=1)
    return float((best * weights).sum() / weights.sum())


def restatement(question: TokenVectors, subject: TokenVectors, sentence: TokenVectors) -> float:
    """How much of the sentence only says again what the question and its passage's subject already say: the
    mean over the sentence's pieces of each one's best cosine with any piece of the question or the subject.
    A sentence that restates the subject ("Hydrostatic weighing is an accurate way to assess your body fat."
    for "hydrostatic weighing accuracy") scores high; one that adds what is asked for ("the error ... can be
    as low as 2% body fat") lower. 0 for a sentence without pieces."""
    return restatements(question, subject, [sentence.vectors])[0]


def restatements(question: TokenVectors, subject: TokenVectors, sentences: Sequence[np.ndarray]) -> list[float]:
    """`restatement` of several sentences of one passage (their token vectors' rows, float32 as the index
    keeps them converted, or float16 as stored): one small product per sentence."""
    said = np.concatenate([question.vectors, subject.vectors]) if len(subject.vectors) else question.vectors
    if len(said) == 0:
        return [0.0] * len(sentences)
    said = np.ascontiguousarray(said.T, dtype=np.float32)
    return [float((np.asarray(rows, dtype=np.float32) @ said).max(axis=1).mean()) if len(rows) else 0.0
            for rows in sentences]


def sentence_scores(question: TokenVectors, passages: Sequence[tuple[TokenVectors, Sequence[TokenVectors]]],
                    idf: dict[str, float], rarest: float, power: float) -> list[list[float]]:
    """Per passage (its subject's token vectors, its sentences'), each sentence's token match."""
    base = question_weights(question, idf, rarest)
    scores = []
    for subject, sentences in passages:
        weights = focus_on_asked(base, question, subject, power)
        scores.append([late_interaction(question, weights, sentence) for sentence in sentences])
    return scores


class QuestionReading:
    """One question's token vectors read against the token vectors an index stored (its TokenTable), for every
    signal that reads them: the token match, the restatement and the heading fit of answer choice's
    candidates, the strong label's agreement, and the subject coverage of refusal. What they share is made once a
    question: the question's weights, each passage subject's fit with the question's pieces, and each
    passage's sentences against the question and its subject, in one product per passage (the per-sentence
    products cost more in calls than in arithmetic). Gives what `late_interaction`, `focus_on_asked` and
    `restatement` give sentence by sentence, within float32's rounding."""

    def __init__(self, question: TokenVectors, index) -> None:
        """`index`: a qa.indexing.index.Index whose token vectors were stored (`index.tokens`)."""
        self.question = question
        self.index = index
        self.weights = question_weights(question, index.idf, index.max_idf)
        self._subject_fits: dict[int, np.ndarray] = {}
        self._passages: dict[int, _PassageReading] = {}
        self._headings: dict[str, dict[int, float]] = {}

    def subject_fit(self, chunk: int) -> np.ndarray:
        """Per question piece, its best cosine with any piece of the chunk's subject; empty when either has none."""
        fit = self._subject_fits.get(chunk)
        if fit is None:
            subject = self.index.tokens.subject_rows(chunk)
            fit = np.zeros(0, dtype=np.float32)
            if len(subject) and len(self.question.vectors):
                fit = (self.question.vectors @ subject.T).max(axis=1)
            self._subject_fits[chunk] = fit
        return fit

    def headings(self, article: str, chunks: Sequence[int]) -> list[float]:
        """`late_interaction` of the question with the subject (the article's title and a section heading) of
        each of these chunks of `article`. Read for all of the article's chunks at once, with one product over
        their subjects, kept converted by the index (the heading fit and the strong label's agreement read most
        of an article's sections: a product each cost more), and kept for the question."""
        fits = self._headings.get(article)
        if fits is None:
            fits = self._headings[article] = self._read_headings(article)
        return [fits[chunk] for chunk in chunks]

    def _read_headings(self, article: str) -> dict[int, float]:
        every = self.index.article_chunks[article]
        rows, bounds = self.index.tokens.subjects_rows(article, every)
        total = self.weights.sum()
        if len(rows) == 0 or len(self.question.vectors) == 0 or total <= 0:
            return dict.fromkeys(every, 0.0)
        held = np.diff(bounds) > 0  # a subject without pieces fits nothing
        fits = np.zeros((len(every), len(self.question.vectors)), dtype=np.float32)
        fits[held] = np.maximum.reduceat(rows @ self.question.vectors.T, bounds[:-1][held], axis=0)
        return dict(zip(every, np.where(held, fits @ self.weights / total, 0.0).tolist()))

    def token_matches(self, chunk: int, sentence_ids: Sequence[int], power: float) -> list[float]:
        """The token match of the chunk's sentences `sentence_ids`: `late_interaction` with the question's weights
        `focus_on_asked` the chunk's subject."""
        fit = self.subject_fit(chunk)
        weights = _focused(self.weights, fit, power) if power > 0 and len(fit) else self.weights
        total = weights.sum()
        if len(self.question.vectors) == 0 or total <= 0:
            return [0.0] * len(sentence_ids)
        passage = self._passage(chunk)
        at = [passage.position[i] for i in sentence_ids]
        return np.where(passage.held[at], passage.best[at] @ weights / total, 0.0).tolist()

    def restatements(self, chunk: int, sentence_ids: Sequence[int]) -> list[float]:
        """The `restatement` of the chunk's sentences `sentence_ids` against the question and the chunk's subject."""
        passage = self._passage(chunk)
        return passage.restated[[passage.position[i] for i in sentence_ids]].tolist()

    def closest(self, chunks: Sequence[int]) -> np.ndarray:
        """Per question piece, its best cosine with any piece of these chunks' subjects and sentences (-1 when
        they have no pieces)."""
        closest = np.full(len(self.question.vectors), -1.0, dtype=np.float32)
        for chunk in chunks:
            fit, passage = self.subject_fit(chunk), self._passage(chunk)
            if len(fit):
                closest = np.maximum(closest, fit)
            if passage.held.any():
                closest = np.maximum(closest, passage.best[passage.held].max(axis=0))
        return closest

    def _passage(self, chunk: int) -> "_PassageReading":
        passage = self._passages.get(chunk)
        if passage is None:
            passage = self._passages[chunk] = self._read_passage(chunk)
        return passage

    def _read_passage(self, chunk: int) -> "_PassageReading":
        """One product: every piece of the chunk's sentences against every piece of the question and its subject."""
        ids = self.index.chunk_sentence_ids[chunk]
        rows, bounds = self.index.tokens.passage_rows(chunk, ids)
        question, subject = self.question.vectors, self.index.tokens.subject_rows(chunk)
        said = np.concatenate([question, subject]) if len(subject) else question
        lengths = np.diff(bounds)
        held = lengths > 0
        restated = np.zeros(len(ids))
        best = np.zeros((len(ids), len(question)), dtype=np.float32)
        if len(rows) and len(said):
            products = rows @ said.T  # (the sentences' pieces, the question's and the subject's pieces)
            starts = bounds[:-1][held]  # a sentence without pieces spans nothing: its neighbours' runs are intact
            restated[held] = np.add.reduceat(products.max(axis=1), starts, dtype=np.float64) / lengths[held]
            if len(question):
                best[held] = np.maximum.reduceat(products[:, :len(question)], starts, axis=0)
        return _PassageReading({sentence: at for at, sentence in enumerate(ids)}, held, best, restated)


@dataclass(frozen=True)
class _PassageReading:
    """A chunk's sentences read against one question (QuestionReading._read_passage)."""

    position: dict[int, int]  # sentence id -> its row below
    held: np.ndarray  # per sentence: it has pieces
    best: np.ndarray  # (sentences, question pieces): each question piece's best cosine with the sentence's pieces
    restated: np.ndarray  # per sentence: its restatement


def stored(rows: np.ndarray) -> TokenVectors:
    """A text's token vectors as an index stores them (qa/indexing/index.py's TokenTable: float16 rows, no
    words, which only the question's weights read)."""
    return TokenVectors(np.asarray(rows, dtype=np.float32), ())


__all__ = ["QuestionReading", "question_weights", "focus_on_asked", "late_interaction", "restatement", "restatements",
           "sentence_scores", "stored", "subject_of"]
