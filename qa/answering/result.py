"""What an answer is, as its readers get it: `Result` and its `Passage`s, the messages shown instead of an
answer, and the plain match labels.

Owns the data types the answer stage (qa/answering/answer.py) returns and everything downstream reads: the
engine, the CLI's JSON, the page's replies (qa/serving/render.py) and the pickles the engine's process
sends the page's. Kept apart from answer.py so that a reader of results loads none of what finding one
needs (faiss, onnxruntime, the index): the page's process imports this module, never answer.py.

Limits: data and its words only; how a result is chosen is answer.py's, how it looks is render.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.answering.context import AnswerContext
from qa.answering.synonyms import Expansion
from qa.answering.triage import EMERGENCY_LINES, SMALL_TALK_REPLIES, Triage, not_english_message
from qa.models.refusal import Confidence

NOT_FOUND = "I couldn't find that in the articles."
# When the articles are on the question's subject but no sentence answers it: the closest passages are shown.
MAY_HELP_MESSAGE = "The articles don't answer that directly, but these passages are on the subject and may help."
# An emergency the articles say nothing about: never a bare refusal after the emergency line.
EMERGENCY_NO_PASSAGE = "The articles don't cover this situation; please get help now."
# Plain labels of how well a passage matches the question, for a lay reader (match_label).
STRONG, PARTIAL, WEAK, MAY_HELP = "strong match", "partial match", "weak match", "may help"


@dataclass(frozen=True)
class Passage:
    source: str
    title: str
    section: str
    text: str
    score: float  # fused rank score (the order passages are shown in)
    dense: float  # cosine similarity to the question
    lexical: float  # BM25 score
    answer: str | None = None  # the answer sentence, when it lies in this passage
    match: str = WEAK  # STRONG, PARTIAL or WEAK: how well it matches the question, in words (match_label)

    def to_dict(self) -> dict:
        return {"source": self.source, "title": self.title, "section": self.section, "text": self.text,
                "match": self.match, "score": round(self.score, 6), "dense": round(self.dense, 4),
                "lexical": round(self.lexical, 4)}


@dataclass(frozen=True)
class Result:
    question: str
    query: str  # what was searched: the question, with its topic restored for a follow-up
    found: bool
    # What is quoted: one sentence verbatim from the articles, or two neighbouring sentences of one section
    # (`answer_sentences`, in the article's order) joined by a space (qa/answering/answer.py, `_quoted`)
    answer: str | None
    answer_source: Passage | None
    answer_score: float  # cosine similarity of question and answer sentence
    passages: tuple[Passage, ...]
    expansions: tuple[Expansion, ...] = ()  # the articles' words added to the query (qa/answering/synonyms.py)
    confidence: Confidence | None = None  # what refusal weighed; None when there was nothing to weigh
    margin: float = 0.0  # refusal's score minus its bar: how clearly the articles answer (negative: refused)
    context: AnswerContext = AnswerContext()  # the article's text shown around the answer (qa/answering/context.py)
    answer_sentences: tuple[str, ...] = ()  # the sentences of `answer`, each verbatim; () when none
    # The one of them answer choice chose (the other, if any, is quoted with it); None when not answered
    answer_sentence: str | None = None
    triage: Triage = Triage()  # emergency, small talk, language (qa/answering/triage.py)
    # Not answered, but the articles are on the subject: the closest passages are offered as "may help"
    may_help: bool = False

    @classmethod
    def unsearched(cls, question: str, triage: Triage) -> "Result":
        """The result for small talk or a question not in English: nothing searched, nothing found."""
        return cls(question=question, query=question, found=False, answer=None, answer_source=None,
                   answer_score=0.0, passages=(), triage=triage)

    @property
    def kind(self) -> str:
        """"answer", "may_help" (not answered, but passages on the subject are offered), "not_found",
        "small_talk" (greetings, thanks) or "not_english"."""
        if self.found and self.answer:
            return "answer"
        if self.triage.small_talk:
            return "small_talk"
        if self.triage.language:
            return "not_english"
        return "may_help" if self.may_help else "not_found"

    @property
    def message(self) -> str:
        """The answer sentence; or what the person is told instead."""
        kind = self.kind
        if kind == "answer":
            return self.answer
        if kind == "small_talk":
            return SMALL_TALK_REPLIES[self.triage.small_talk]
        if kind == "not_english":
            return f"{NOT_FOUND} {not_english_message(self.triage.language)}"
        if kind == "may_help":
            return MAY_HELP_MESSAGE
        return EMERGENCY_NO_PASSAGE if self.triage.emergency else NOT_FOUND

    @property
    def emergency(self) -> str | None:
        """The line to call the emergency number, shown before anything else; None for most questions."""
        return EMERGENCY_LINES.get(self.triage.emergency) if self.triage.emergency else None

    def to_dict(self) -> dict:
        source = self.answer_source
        found = self.kind == "answer"
        return {
            "question": self.question,
            "kind": self.kind,
            "found": found,
            "emergency": self.emergency,
            "answer": self.message,
            "answer_source": {"source": source.source, "title": source.title, "section": source.section,
                              "match": source.match} if found and source else None,
            "context": self.context.to_dict() if found and self.context else None,
            "passages": [p.to_dict() for p in self.passages],
        }
