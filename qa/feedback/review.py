"""The maintainer's side of feedback: the report, and turning feedback into example questions.

Owns:
- the report (`python -m qa feedback`): the questions the articles did not
  answer, most-asked first, with near-duplicates grouped; the disliked
  answers with their comments; the liked ones. Read from the feedback
  database (qa/feedback/store.py); the index is not needed;
- grouping: two questions are the same question when they read the same
  once case, spacing and end punctuation are set aside, and near-duplicates
  when, written in the articles' words (`Synonyms.canonical`: "narcan" ->
  "naloxone"), their MiniLM vectors (the configured model, untuned) have a
  cosine of at least `Settings.feedback_group_similarity`. The most-asked
  question leads a group and each other question joins the leader it is
  closest to, if close enough: compared with the leader only, so a chain of
  small steps never joins two different questions;
- promotion (`python -m qa feedback promote ID ...`): a liked question with
  the answer it got, or any question with `--answer "a sentence of the
  article"`, appended to the question bank (`corpus/questions/<article>.jsonl`,
  qa/models/question_bank.py) after checking that the answer is in the article by
  the rule the build links examples with (`question_bank.link`). The next
  build picks the lines up; the rows are marked promoted.

Limits: the report holds every row in memory and groups in O(n^2) over the
distinct unanswered questions, which is fine for thousands a day. Grouping
judges similarity, not meaning: the threshold was chosen on a few dozen
pairs (tests/test_review.py). A promotion never edits or removes bank lines.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from qa.reading.chunking import chunk_articles
from qa.reading.corpus import load_corpus
from qa.errors import FeedbackError
from qa.feedback.store import Entry, FeedbackStore
from qa.models.question_bank import BankQuestion, append_to_bank, bank_file_for, link, load_bank, same_text
from qa.settings import Settings
from qa.answering.synonyms import Synonyms

# ---------------------------------------------------------------------------- the report


@dataclass
class AskedQuestion:
    """One question as typed (the first spelling seen), and every time it was asked."""

    question: str
    ids: list[int]
    last_at: str

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class Group:
    """Near-duplicate questions; the first (most asked) leads."""

    questions: list[AskedQuestion] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(q.count for q in self.questions)

    @property
    def last_at(self) -> str:
        return max(q.last_at for q in self.questions)


@dataclass
class Report:
    database: Path
    since: str | None
    unanswered: list[Group]
    disliked: list[Entry]
    liked: list[Entry]
    promoted_hidden: int  # rows already promoted, left out (include_promoted=False)


def question_key(question: str) -> str:
    """Two spellings of one question: case, spacing and end punctuation aside."""
    return " ".join(question.lower().split()).rstrip(" ?!.…")


def build_report(store: FeedbackStore, settings: Settings, since: datetime | None = None,
                 include_promoted: bool = False, embedder=None) -> Report:
    """Everything the report shows; loads the model only when there are unanswered questions to group."""
    entries = store.entries(since)
    hidden = sum(1 for e in entries if e.promoted_at) if not include_promoted else 0
    if not include_promoted:
        entries = [e for e in entries if not e.promoted_at]
    refusals = [e for e in entries if e.kind == "refusal"]
    groups = []
    if refusals:
        if embedder is None:
            from qa.models.embedding import Embedder
            embedder = Embedder(settings.model, settings.batch_size, settings.threads)
        groups = group_questions(refusals, embedder, Synonyms.load(settings.synonyms_file),
                                 settings.feedback_group_similarity)
    newest_first = lambda rows: sorted(rows, key=lambda e: (e.at, e.id), reverse=True)  # noqa: E731
    return Report(database=store.path, since=since.isoformat() if since else None, unanswered=groups,
                  disliked=newest_first(e for e in entries if e.kind == "dislike"),
                  liked=newest_first(e for e in entries if e.kind == "like"), promoted_hidden=hidden)


def group_questions(rows: Sequence[Entry], embedder, synonyms: Synonyms, threshold: float) -> list[Group]:
    """Rows' questions grouped (see the module's docstring), the most-asked group first."""
    asked: dict[str, AskedQuestion] = {}
    for row in rows:
        key = question_key(row.question)
        if key not in asked:
            asked[key] = AskedQuestion(row.question, [], row.at)
        asked[key].ids.append(row.id)
        asked[key].last_at = max(asked[key].last_at, row.at)
    distinct = _most_asked_first(asked.values())
    if not distinct:
        return []
    vectors = embedder.encode([synonyms.canonical(q.question) for q in distinct])
    groups: list[Group] = []
    leaders: list[int] = []  # row of `vectors` of each group's leader
    for position, question in enumerate(distinct):
        if leaders:
            similarity = vectors[leaders] @ vectors[position]
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                groups[best].questions.append(question)
                continue
        groups.append(Group([question]))
        leaders.append(position)
    return _most_asked_first(groups)


def _most_asked_first(items):
    """Most asked first; among as many, the most recently asked first (two stable sorts)."""
    recent_first = sorted(items, key=lambda item: item.last_at, reverse=True)
    return sorted(recent_first, key=lambda item: item.count, reverse=True)


def report_json(report: Report) -> dict:
    return {
        "database": str(report.database),
        "since": report.since,
        "unanswered": [{"count": g.count, "last_asked": g.last_at,
                        "questions": [{"question": q.question, "count": q.count, "ids": q.ids,
                                       "last_asked": q.last_at} for q in g.questions]}
                       for g in report.unanswered],
        "disliked": [e.to_dict() for e in report.disliked],
        "liked": [e.to_dict() for e in report.liked],
        "promoted_hidden": report.promoted_hidden,
    }


def plain(text: str | None) -> str:
    """Text from a person or an article, safe for a terminal: control characters (escape sequences,
    carriage returns) shown as \\x.. codes, never acted on. Markup stays the literal text it is."""
    if text is None:
        return ""
    return "".join(ch if ch == " " or unicodedata.category(ch)[0] != "C" else f"\\x{ord(ch):02x}"
                   for ch in text)


def format_report(report: Report) -> str:
    """The report as plain text for a terminal (never HTML: comments are shown as the text typed)."""
    since = f" since {report.since}" if report.since else ""
    lines = [f"Feedback in {report.database}{since}", ""]
    asked = sum(g.count for g in report.unanswered)
    lines.append(f"Questions the articles did not answer: {asked} asked, {len(report.unanswered)} different")
    for group in report.unanswered:
        lead, *others = group.questions
        lines.append(f"  {group.count:>3}x  {plain(lead.question)}   [id {_ids(lead.ids)}]")
        for other in others:
            lines.append(f"          ~ {plain(other.question)}" + (f" ({other.count}x)" if other.count > 1 else "")
                         + f"   [id {_ids(other.ids)}]")
    lines += ["", f"Disliked answers: {len(report.disliked)}"]
    for entry in report.disliked:
        lines += _entry_lines(entry)
        if entry.comment:
            lines.append(f"        comment: {plain(entry.comment)}")
    lines += ["", f"Liked answers: {len(report.liked)}"]
    for entry in report.liked:
        lines += _entry_lines(entry)
    if report.promoted_hidden:
        lines += ["", f"({report.promoted_hidden} rows already promoted are not shown; --all shows them.)"]
    lines += ["", "Turn one into an example question: python -m qa feedback promote ID "
                  "[--answer \"the sentence of the article that answers it\"], then python -m qa build."]
    return "\n".join(lines)


def _ids(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


def _entry_lines(entry: Entry) -> list[str]:
    when = entry.at.replace("T", " ")[:16]
    lines = [f"  #{entry.id}  {when}  {plain(entry.question)}"]
    if entry.history:
        lines.append(f"        after: {' / '.join(plain(h) for h in entry.history)}")
    if entry.refused:
        lines.append("        answer: (refused: the articles do not say)")
    else:
        lines.append(f"        answer: {plain(entry.answer)}")
        lines.append(f"        from: {plain(entry.source)} > {plain(entry.section)}")
    if entry.promoted_to:
        lines.append(f"        promoted to {plain(entry.promoted_to)} on {entry.promoted_at}")
    return lines


# ---------------------------------------------------------------------------- promotion


@dataclass(frozen=True)
class Promotion:
    added: list[BankQuestion]  # new lines of the bank
    already: list[BankQuestion]  # already in the bank: nothing written for them
    files: list[Path]  # bank files written
    ids: list[int]  # feedback rows marked promoted


def article_sentences(settings: Settings) -> tuple[list[str], list[str]]:
    """Every answer-candidate sentence of the corpus with its article, as the build makes them."""
    corpus = load_corpus(settings.corpus_dir, settings)
    sentences, sources, seen = [], [], set()
    for chunk in chunk_articles(corpus.articles, settings):
        for sentence in chunk.sentences:
            if (sentence, chunk.source) not in seen:
                seen.add((sentence, chunk.source))
                sentences.append(sentence)
                sources.append(chunk.source)
    return sentences, sources


def promote(store: FeedbackStore, settings: Settings, ids: Sequence[int], answer: str | None = None,
            article: str | None = None, say: Callable[[str], None] = lambda text: None) -> Promotion:
    """Append these rows' questions to the question bank; with `answer`, all with that sentence.

    Everything is checked before anything is written: an unknown id, a row with no liked answer and
    no `answer`, or an answer that is not in the article is a FeedbackError and no file changes.
    """
    if not ids:
        raise FeedbackError("give the id of at least one row of the report (python -m qa feedback)")
    rows = store.get(list(dict.fromkeys(ids)))
    sentences, sources = article_sentences(settings)
    articles = sorted(set(sources))
    if article is not None and article not in articles:
        raise FeedbackError(f"no article {article!r} in {settings.corpus_dir}; the articles are: {', '.join(articles)}")
    entries: list[BankQuestion] = []
    for row in rows:
        if answer is not None:
            text, candidates = answer.strip(), [article] if article else articles
        elif row.kind == "like" and not row.refused and row.answer:
            text, candidates = row.answer, [article or row.source]
        else:
            what = {"refusal": "was not answered", "dislike": "got an answer the person disliked",
                    "like": "was liked, but the engine had refused it"}[row.kind]
            raise FeedbackError(f"#{row.id} ({row.question!r}) {what}: give the sentence of the article that "
                                'answers it with --answer "..."')
        if not text:
            raise FeedbackError("--answer is empty: give the sentence of the article that answers the question")
        found = [source for source in candidates
                 if link([BankQuestion(row.question, source, text)], sentences, sources)[0]]
        if not found:
            where = f"article {candidates[0]}" if len(candidates) == 1 else "any article"
            raise FeedbackError(f"the answer for #{row.id} is not in {where} (it must be copied word for word "
                                f"from the article, a sentence or a whole list line): {text!r}")
        if len(found) > 1:
            raise FeedbackError(f"the answer for #{row.id} is in several articles ({', '.join(found)}): "
                                "name one with --article")
        entries.append(BankQuestion(row.question.strip(), found[0], text))

    bank, _ = load_bank(settings.corpus_dir)
    new: list[BankQuestion] = []
    already: list[BankQuestion] = []
    for entry in entries:
        same = [b for b in [*bank, *new] if question_key(b.question) == question_key(entry.question)]
        if any(b.source == entry.source and same_text(b.answer, entry.answer) for b in new if b in same):
            continue  # the same question asked again (several rows): one line
        if any(b.source == entry.source and same_text(b.answer, entry.answer) for b in same):
            already.append(entry)
        elif same:
            raise FeedbackError(f"the question {entry.question!r} is already in the question bank with another "
                                f"answer ({same[0].source}: {same[0].answer!r}); edit that line by hand instead")
        else:
            new.append(entry)
    files = append_to_bank(settings.corpus_dir, new) if new else []
    for entry in new:
        say(f"added to {bank_file_for(settings.corpus_dir, entry.source).name}: {entry.question!r} -> {entry.answer!r}")
    for entry in already:
        say(f"already in the question bank: {entry.question!r}")
    try:
        for source in sorted({e.source for e in entries}):
            promoted = [row.id for row, entry in zip(rows, entries) if entry.source == source]
            store.mark_promoted(promoted, bank_file_for(settings.corpus_dir, source).name)
    except FeedbackError as exc:
        raise FeedbackError(f"the question bank was written, but the feedback rows could not be marked "
                            f"as promoted ({exc}); they will still show in the report") from exc
    return Promotion(new, already, files, [row.id for row in rows])


def parse_date(text: str) -> datetime:
    """'2026-11-30' (midnight UTC) or an ISO 8601 time; anything else is a FeedbackError."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FeedbackError(f"not a date: {text!r} (use YYYY-MM-DD, or YYYY-MM-DDTHH:MM)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


__all__ = ["AskedQuestion", "Group", "Report", "Promotion", "build_report", "group_questions", "report_json",
           "format_report", "promote", "article_sentences", "question_key", "parse_date", "plain"]
