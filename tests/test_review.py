"""The maintainer's report and promotion (qa/feedback/review.py): real SQLite, real builds; the real model where the
grouping of questions by meaning is the point, the fake embedder (fast tier) where it is not."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from qa import cli
from qa.indexing import index as index_store
from qa.indexing.build import build as build_index
from qa.serving.engine import Engine
from qa.errors import FeedbackError
from qa.feedback.store import FeedbackStore, Reply
from qa.models.question_bank import load_bank
from qa.feedback.review import build_report, format_report, group_questions, promote, report_json
from qa.settings import Settings
from qa.answering.synonyms import Synonyms

# Real questions people ask, in pairs: the same question in other words (grouped) ...
PARAPHRASES = [
    ("how long does narcan last", "how long does naloxone work"),
    ("how long does narcan last", "how long do the effects of naloxone last"),
    ("can you get addicted to ketamine", "is ketamine addictive"),
    ("is special k addictive", "can ketamine be addictive"),
    ("what is a k hole", "what does k-hole mean"),
    ("is ketamine therapy covered by insurance", "does insurance pay for ketamine therapy"),
    ("can i drink alcohol with ketamine", "is it safe to mix ketamine and alcohol"),
    ("how much does narcan cost", "what is the price of naloxone"),
    ("where can i buy narcan", "where do i get naloxone"),
]
# ... and different questions on the same topic (kept apart).
DIFFERENT = [
    ("how long does narcan last", "how long does ketamine last"),
    ("how long does naloxone last", "how long does withdrawal last"),
    ("can you get addicted to ketamine", "can you overdose on ketamine"),
    ("is ketamine therapy covered by insurance", "is ketamine therapy safe"),
    ("how much does narcan cost", "how much ketamine is a dose"),
    ("does naloxone reverse ketamine", "does naloxone reverse fentanyl"),
    ("can i drink alcohol with ketamine", "can i drive after ketamine"),
    ("where can i buy narcan", "where can i buy ketamine"),
    ("what is a k hole", "what is ketamine"),
    ("is ketamine legal", "is narcan legal"),
]

LIKED = Reply(question="how quickly does the nose spray bring someone round", history=(), refused=False,
              answer="Naloxone reverses opioid overdose within minutes.", source="alpha.txt",
              title="Alpha Article About Naloxone", section="Naloxone Basics", generation="build-1")
WITHDRAWAL = "Opioid withdrawal causes sweating, nausea and muscle aches."


def day(hour: int) -> datetime:
    return datetime(2026, 11, 30, hour, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "feedback.sqlite3")


def groups_of(store, embedder, questions: list[str]) -> list[list[str]]:
    for question in questions:
        store.log_refusal(question)
    settings = Settings()
    groups = group_questions(store.entries(), embedder, Synonyms.load(settings.synonyms_file),
                             settings.feedback_group_similarity)
    return [[q.question for q in group.questions] for group in groups]


@pytest.mark.parametrize("first, second", PARAPHRASES)
def test_paraphrases_are_grouped(tmp_path, embedder, first, second):
    # One group, in either order (asked once each, the more recent first: two inserts can straddle a second).
    groups = groups_of(FeedbackStore(tmp_path / "f.sqlite3"), embedder, [first, second])
    assert [sorted(group) for group in groups] == [sorted([first, second])]


@pytest.mark.parametrize("first, second", DIFFERENT)
def test_different_questions_on_one_topic_are_not(tmp_path, embedder, first, second):
    # Apart; in either order (asked once each, the more recent first: two inserts can straddle a second).
    assert sorted(groups_of(FeedbackStore(tmp_path / "f.sqlite3"), embedder, [first, second])) == \
        sorted([[first], [second]])


def test_the_report_puts_the_most_asked_first_and_counts_spellings_as_one(store, embedder):
    asked = ["does insurance cover ketamine therapy", "How long does Narcan last?", "how long does narcan last",
             "how long does naloxone work", "is ketamine safe during pregnancy", "how long does narcan last"]
    for hour, question in enumerate(asked, 8):
        store.log_refusal(question, "build-1", at=day(hour))
    store.record_vote("r1", LIKED, liked=True, at=day(9))
    report = build_report(store, Settings(), embedder=embedder)
    lead = report.unanswered[0]
    assert [(q.question, q.count) for q in lead.questions] == [("How long does Narcan last?", 3),
                                                              ("how long does naloxone work", 1)]
    assert lead.count == 4 and len(report.unanswered) == 3
    assert [e.question for e in report.liked] == [LIKED.question] and report.disliked == []
    text = format_report(report)
    assert text.index("How long does Narcan last?") < text.index("is ketamine safe during pregnancy")
    assert "6 asked, 3 different" in text
    # --since: only what came after
    later = build_report(store, Settings(), since=day(12), embedder=embedder)
    assert [g.questions[0].question for g in later.unanswered] == ["how long does narcan last",  # the latest
                                                                   "is ketamine safe during pregnancy"]
    assert later.liked == []


def test_comments_are_shown_as_the_text_typed_never_as_markup_or_terminal_codes(store, fake_embedder):
    comment = "<script>alert('x')</script> wrong \x1b[31mred\x1b[0m\rover"
    store.record_vote("r1", LIKED, liked=False, comment=comment)
    report = build_report(store, Settings(), embedder=fake_embedder)
    text = format_report(report)
    assert "comment: <script>alert('x')</script> wrong \\x1b[31mred\\x1b[0m\\x0dover" in text
    assert "\x1b" not in text and "\r" not in text and "&lt;" not in text
    assert report_json(report)["disliked"][0]["comment"] == comment  # JSON carries it exactly


# ------------------------------------------------------------------ promotion


@pytest.fixture
def tiny(tiny_settings, tmp_path) -> Settings:
    return tiny_settings.replace(feedback_db=tmp_path / "feedback.sqlite3")


def bank_bytes(settings: Settings) -> dict[str, bytes]:
    folder = settings.corpus_dir / "questions"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


def test_promoted_questions_are_linked_to_their_sentences_by_the_next_build(tiny, fake_embedder):
    embedder = fake_embedder  # linking is by the text quoted, not by meaning
    store = FeedbackStore(tiny.feedback_db)
    liked = store.record_vote("r1", LIKED, liked=True)
    refused = store.log_refusal("what does coming off opioids feel like")
    again = store.log_refusal("What does coming off opioids feel like?")  # asked twice: one example
    added = promote(store, tiny, [liked]).added + \
        promote(store, tiny, [refused, again], answer=f"  {WITHDRAWAL} ").added
    assert [(e.question, e.source, e.answer) for e in added] == [
        (LIKED.question, "alpha.txt", LIKED.answer), ("what does coming off opioids feel like", "gamma.md", WITHDRAWAL)]
    lines = (tiny.corpus_dir / "questions" / "gamma.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"question": "what does coming off opioids feel like", "source": "gamma.md", "answer": WITHDRAWAL}]
    assert [e.promoted_to for e in store.get([liked, refused, again])] == ["alpha.jsonl", "gamma.jsonl", "gamma.jsonl"]

    report = build_index(tiny, embedder)
    assert (report.questions, report.question_warnings) == (2, ())
    index = index_store.load(tiny)
    for entry in added:
        ids = index.question_sentence_ids[index.questions.index(entry.question)]
        assert [index.sentences[i] for i in ids] == [entry.answer]
    engine = Engine.open(tiny, build="never", embedder=embedder)
    assert engine.ask("what does coming off opioids feel like").answer == WITHDRAWAL
    # The report no longer lists what was promoted (unless asked to).
    assert build_report(store, tiny, embedder=embedder).promoted_hidden == 3


def test_a_bad_promotion_is_a_clear_error_and_leaves_the_bank_untouched(tiny):
    store = FeedbackStore(tiny.feedback_db)
    liked = store.record_vote("r1", LIKED, liked=True)
    disliked = store.record_vote("r2", LIKED, liked=False, comment="too vague")
    refused = store.log_refusal("what does coming off opioids feel like")
    promote(store, tiny, [liked])
    (tiny.corpus_dir / "questions" / "alpha.jsonl").write_bytes(
        (tiny.corpus_dir / "questions" / "alpha.jsonl").read_bytes().rstrip(b"\n"))  # hand-edited, no newline
    before = bank_bytes(tiny)

    cases = [
        (dict(ids=[refused, 99]), "no feedback with id 99"),
        (dict(ids=[refused]), "was not answered: give the sentence"),
        (dict(ids=[disliked]), "disliked: give the sentence"),
        (dict(ids=[refused], answer="Withdrawal is easy and painless."), "not in any article"),
        (dict(ids=[refused], answer=WITHDRAWAL, article="alpha.txt"), "not in article alpha.txt"),
        (dict(ids=[refused], answer=WITHDRAWAL, article="omega.txt"), "no article 'omega.txt'"),
        (dict(ids=[refused], answer="   "), "empty"),
        (dict(ids=[liked], answer=WITHDRAWAL), "already in the question bank with another answer"),
    ]
    for arguments, message in cases:
        with pytest.raises(FeedbackError, match=message):
            promote(store, tiny, **arguments)
        assert bank_bytes(tiny) == before, arguments
    assert not any(e.promoted_at for e in store.get([disliked, refused]))

    # A sentence two articles share must be named by its article.
    (tiny.corpus_dir / "delta.txt").write_text("Delta Article\n\nRecap\n\n" + WITHDRAWAL + "\n", encoding="utf-8")
    with pytest.raises(FeedbackError, match="several articles .*gamma.md.*--article"):
        promote(store, tiny, [refused], answer=WITHDRAWAL)
    assert bank_bytes(tiny) == before
    promote(store, tiny, [refused], answer=WITHDRAWAL, article="delta.txt")
    promote(store, tiny, [liked, liked])  # already there: rewrites alpha.jsonl with nothing new
    after = bank_bytes(tiny)
    assert after["alpha.jsonl"] == before["alpha.jsonl"]
    assert [json.loads(line) for line in after["delta.jsonl"].decode().splitlines()] == [
        {"question": "what does coming off opioids feel like", "source": "delta.txt", "answer": WITHDRAWAL}]
    assert not [p for p in (tiny.corpus_dir / "questions").iterdir() if p.name.startswith(".")]  # no temp files left
    # Promoting the same again adds nothing.
    again = promote(store, tiny, [liked])
    assert (again.added, len(again.already)) == ([], 1) and bank_bytes(tiny) == after
    # A hand-edited file that lost its last newline gets it back before the new line.
    other = store.record_vote("r3", dataclasses.replace(LIKED, question="does the nose spray work fast"), liked=True)
    promote(store, tiny, [other])
    assert bank_bytes(tiny)["alpha.jsonl"].startswith(before["alpha.jsonl"] + b"\n{")
    assert len(load_bank(tiny.corpus_dir)[0]) == 3


def test_the_command_line_report_and_promotion(tiny, fake_embedder, capsys, monkeypatch):
    monkeypatch.setattr("qa.models.embedding.Embedder", lambda *args, **kwargs: fake_embedder)  # the report groups with it
    store = FeedbackStore(tiny.feedback_db)
    refused = store.log_refusal("what does coming off opioids feel like")
    store.record_vote("r1", LIKED, liked=False, comment="<b>vague</b>")
    base = ["--feedback-db", str(tiny.feedback_db), "--corpus", str(tiny.corpus_dir)]
    assert cli.main(["feedback", *base, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["unanswered"][0]["questions"][0]["ids"] == [refused]
    assert report["disliked"][0]["comment"] == "<b>vague</b>"

    assert cli.main(["feedback", *base, "promote", str(refused), "--answer", "Withdrawal is easy."]) == 2
    assert "is not in any article" in capsys.readouterr().err and bank_bytes(tiny) == {}
    assert cli.main(["feedback", *base, "promote", str(refused), "--answer", WITHDRAWAL]) == 0
    out = capsys.readouterr().out
    assert "1 example question(s) added" in out and "python -m qa build" in out
    assert cli.main(["feedback", *base, "--since", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err
    assert cli.main(["feedback", *base, "delete", "--everything"]) == 0
    assert store.entries() == []
