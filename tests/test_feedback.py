"""The feedback database (qa/feedback/store.py): a real SQLite file in tmp_path, real threads, real faults."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import threading
from datetime import datetime, timezone

import pytest

from qa.feedback import store as feedback
from qa.errors import FeedbackError, FeedbackStoreError
from qa.feedback.store import FeedbackStore, RecentReplies, Reply
from qa.settings import Settings

REPLY = Reply(question="does narcan work on ketamine", history=("what is ketamine",), refused=False,
              answer="The short answer is no; Naloxone does not reverse the effects of Ketamine.",
              source="naloxone-and-ketamine.txt", title="Unveiling the Mystery",
              section="Does Naloxone Reverse Ketamine Effects?", generation="build-1")
REFUSED = Reply(question="how much does narcan cost", history=(), refused=True, answer=None, source=None,
                title=None, section=None, generation="build-1")


def rows(path, what="kind, question, comment") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {what} FROM feedback ORDER BY id").fetchall()


def test_the_database_is_created_on_first_use_in_wal_mode_with_its_schema_version(tmp_path):
    path = tmp_path / "data" / "feedback.sqlite3"  # neither the folder nor the file exists
    store = FeedbackStore(path)
    assert store.entries() == [] and not path.exists()  # reading creates nothing
    store.log_refusal("how much does narcan cost", "build-1")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (feedback.SCHEMA_VERSION,)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(feedback)")}
    # What is stored, and nothing about who: no address, cookie, session or account column.
    assert columns == {"id", "kind", "at", "question", "history", "refused", "answer", "source", "title", "section",
                       "generation", "comment", "reply", "promoted_at", "promoted_to"}


def test_a_refusal_keeps_the_question_only_and_a_vote_everything_it_refers_to(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    store.log_refusal("how much does narcan cost", "build-1", at=datetime(2026, 11, 30, 9, 15, tzinfo=timezone.utc))
    store.record_vote("r1", REPLY, liked=True)
    store.record_vote("r2", REFUSED, liked=False, comment="the price is on the pharmacy's page")
    refusal, like, dislike = store.entries()
    assert (refusal.kind, refusal.question, refusal.history, refusal.answer, refusal.generation, refusal.at) == (
        "refusal", "how much does narcan cost", (), None, "build-1", "2026-11-30T09:15:00+00:00")
    assert (like.kind, like.question, like.history, like.refused, like.answer, like.source, like.section,
            like.generation) == ("like", REPLY.question, REPLY.history, False, REPLY.answer, REPLY.source,
                                 REPLY.section, "build-1")
    assert (dislike.kind, dislike.refused, dislike.answer, dislike.comment) == (
        "dislike", True, None, "the price is on the pharmacy's page")


def test_one_vote_per_reply_a_new_one_replaces_it_and_a_withdrawn_one_is_gone(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    first = store.record_vote("r1", REPLY, liked=False, comment="wrong article")
    assert store.record_vote("r1", REPLY, liked=True) == first  # changed their mind: same row
    assert rows(store.path) == [("like", REPLY.question, None)]  # the comment went with the thumbs-down
    assert store.record_vote("r1", REPLY, liked=False, comment="no, really wrong") == first
    assert rows(store.path) == [("dislike", REPLY.question, "no, really wrong")]
    assert store.withdraw_vote("r1") and not store.withdraw_vote("r1")
    assert rows(store.path) == []


def test_comments_over_the_limit_are_refused_and_markup_is_stored_as_typed(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3", comment_chars=40)
    with pytest.raises(FeedbackError, match="at most 40 characters; this one has 41"):
        store.record_vote("r1", REPLY, liked=False, comment="x" * 41)
    with pytest.raises(FeedbackError, match="thumbs-down"):
        store.record_vote("r1", REPLY, liked=True, comment="great")  # a comment is never dropped silently
    assert store.entries() == []
    markup = "<img src=x onerror=alert(1)> **no**"
    store.record_vote("r1", REPLY, liked=False, comment=f"  {markup}\n")
    assert rows(store.path) == [("dislike", REPLY.question, markup)]
    assert FeedbackStore.from_settings(Settings(feedback_comment_chars=40)).comment_chars == 40


def test_twenty_threads_voting_at_once_lose_no_vote(tmp_path):
    # The file does not exist yet: the threads also race to create the schema.
    store = FeedbackStore(tmp_path / "f.sqlite3")
    threads, per_thread = 20, 15
    start = threading.Barrier(threads)
    failures = []

    def vote(number: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                store.record_vote(f"r{number}-{i}", REPLY, liked=i % 2 == 0,
                                  comment=None if i % 2 == 0 else f"thread {number} vote {i}")
                store.log_refusal(f"question {number}-{i}")
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            failures.append(exc)

    workers = [threading.Thread(target=vote, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    entries = store.entries()
    assert sum(e.kind == "refusal" for e in entries) == threads * per_thread
    votes = [e for e in entries if e.kind != "refusal"]
    assert len(votes) == threads * per_thread
    assert {e.comment for e in votes if e.kind == "dislike"} == {
        f"thread {n} vote {i}" for n in range(threads) for i in range(1, per_thread, 2)}


def test_a_corrupt_file_refuses_feedback_with_the_reason(tmp_path):
    path = tmp_path / "f.sqlite3"
    path.write_bytes(b"this is not a database, it is a text file someone saved over it\n" * 100)
    store = FeedbackStore(path)
    with pytest.raises(FeedbackStoreError, match="not a database") as caught:
        store.record_vote("r1", REPLY, liked=True)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    with pytest.raises(FeedbackStoreError):
        store.entries()
    assert path.read_bytes().startswith(b"this is not a database")  # left as it was, for a person to look at


def test_a_locked_database_refuses_the_vote_after_the_timeout(tmp_path):
    path = tmp_path / "f.sqlite3"
    FeedbackStore(path).log_refusal("first")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the lock
    try:
        with pytest.raises(FeedbackStoreError, match="locked"):
            FeedbackStore(path, timeout=0.2).record_vote("r1", REPLY, liked=True)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    FeedbackStore(path).record_vote("r1", REPLY, liked=True)  # free again: taken
    assert len(rows(path)) == 2


def test_a_writer_of_this_process_that_does_not_finish_refuses_the_next_vote_after_the_queue_timeout(tmp_path):
    path = tmp_path / "f.sqlite3"
    FeedbackStore(path).log_refusal("first")
    turn = feedback._WRITERS.lock_for(path)
    turn.acquire()  # a writer of this process is stuck inside its transaction
    try:
        with pytest.raises(FeedbackStoreError, match="locked"):
            FeedbackStore(path, queue_timeout=0.2).record_vote("r1", REPLY, liked=True)
    finally:
        turn.release()
    FeedbackStore(path).record_vote("r1", REPLY, liked=True)  # its turn came: taken
    assert len(rows(path)) == 2


def test_a_read_only_database_refuses_the_vote(tmp_path):
    path = tmp_path / "f.sqlite3"
    store = FeedbackStore(path)
    store.log_refusal("first")  # its connection is closed: the last one out moves the WAL into the file
    assert not (tmp_path / "f.sqlite3-wal").exists()
    if os.geteuid() == 0:  # root writes through file modes; the immutable flag binds root too
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: cannot make a file read-only")
        undo = ["chattr", "-i", str(path)]
    else:
        path.chmod(0o444)
        tmp_path.chmod(0o555)
        undo = None
    try:
        with pytest.raises(FeedbackStoreError, match="readonly|read-only|unable to open|attempt to write"):
            store.record_vote("r1", REPLY, liked=True)
    finally:
        if undo:
            subprocess.run(undo, check=True)
        else:
            tmp_path.chmod(0o755)
            path.chmod(0o644)
    assert rows(path) == [("refusal", "first", None)]


def test_a_database_of_a_newer_version_is_refused_and_an_older_one_migrated(tmp_path, monkeypatch):
    path = tmp_path / "f.sqlite3"
    store = FeedbackStore(path)
    store.log_refusal("asked before the upgrade")
    # The next release adds a step; opening the old file runs it once and keeps the rows.
    step = ("ALTER TABLE feedback ADD COLUMN language TEXT",)
    monkeypatch.setattr(feedback, "MIGRATIONS", feedback.MIGRATIONS + (step,))
    monkeypatch.setattr(feedback, "SCHEMA_VERSION", feedback.SCHEMA_VERSION + 1)
    store.log_refusal("asked after it")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (feedback.SCHEMA_VERSION,)
        assert "language" in {row[1] for row in conn.execute("PRAGMA table_info(feedback)")}
    assert [e.question for e in store.entries()] == ["asked before the upgrade", "asked after it"]
    monkeypatch.undo()  # this program is now older than the file
    with pytest.raises(FeedbackStoreError, match="newer"):
        store.log_refusal("from an old program")
    assert len(rows(path)) == 2


def test_entries_since_a_date_and_deleting_by_id_date_or_all(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    for day in (1, 2, 3):
        store.log_refusal(f"day {day}", at=datetime(2026, 11, day, 12, tzinfo=timezone.utc))
    assert [e.question for e in store.entries(since=datetime(2026, 11, 2, tzinfo=timezone.utc))] == ["day 2", "day 3"]
    assert store.delete(before=datetime(2026, 11, 2, tzinfo=timezone.utc)) == 1
    assert store.delete([store.entries()[0].id]) == 1
    assert [e.question for e in store.entries()] == ["day 3"]
    assert not (tmp_path / "f.sqlite3-wal").exists() or (tmp_path / "f.sqlite3-wal").stat().st_size == 0
    assert store.delete(everything=True) == 1 and store.entries() == []
    with pytest.raises(FeedbackError, match="no feedback with id 7"):
        store.get([7])


def test_recent_replies_forget_the_oldest_and_ids_are_not_guessable():
    replies = RecentReplies(capacity=3)
    ids = [replies.add(REPLY) for _ in range(4)]
    assert len(set(ids)) == 4 and all(len(i) == 17 and i.startswith("r") for i in ids)
    assert replies.get(ids[0]) is None and replies.get(ids[3]) == REPLY and len(replies) == 3
    assert replies.get(None) is None


def test_a_reply_keeps_the_earlier_questions_the_engine_read(tiny_engine):
    engine = tiny_engine
    question = "does it reverse opioid overdose within minutes?"
    result = engine.ask(question, ["what is naloxone"])
    reply = Reply.from_result(result, ["", "x" * 3000, "what is naloxone"], "build-7",
                              max_chars=engine.settings.max_question_chars)
    assert reply.history == ("what is naloxone",)  # empty and oversized turns: not questions
    assert (reply.question, reply.refused, reply.generation) == (question, False, "build-7")
    assert reply.answer == result.answer and reply.source == result.answer_source.source
    assert reply.section == result.answer_source.section
    assert json.dumps(list(reply.history))
