"""What the people who use the chat page tell us: votes on replies, and the questions left unanswered.

Owns the feedback database, an SQLite file (`Settings.feedback_db`, by default
`data/feedback.sqlite3`, outside `index/`), and what may go into it:

- a **vote** (kind "like" or "dislike") on one reply: the question, the earlier
  questions of its conversation, whether the engine refused, the answer
  sentence with its article and section, the index generation that answered,
  the time, and for a thumbs-down an optional short comment. One vote per
  reply: voting again on it replaces the vote, withdrawing it deletes it;
- a **refusal** (kind "refusal"): a question the articles did not answer, with
  the question, the generation and the time only, so the maintainer sees what
  people ask that the articles do not cover.

Nothing else: no IP address, cookie, session or account. `RecentReplies`
keeps, in memory only, what a vote on each recent reply will need: a reply
carries its id (`reply_id`), not its data, and nothing about a question is
stored unless the person votes on it or the articles refused it.

The database: WAL journal (readers never wait for the writer), one schema
whose version is SQLite's `user_version`, created on first use and migrated
step by step (`MIGRATIONS`) when it is older; a file from a newer version is
refused, not altered. Every operation opens its own connection, so any number
of threads (the page's workers) and processes (the page, `qa feedback`) may
write at once. Within a process, writers wait on one lock per database file
(`_WRITERS`), woken when it is free; SQLite's own lock, waited for up to
`timeout` seconds, only arbitrates between processes. (SQLite's busy wait
polls with growing sleeps, so a writer can keep losing the race to others:
twenty threads voting at once on a loaded CI machine starved one past the
timeout and its vote was lost.)

Limits: a database that cannot be used (read-only, locked past the timeout,
corrupt) raises `FeedbackStoreError` with the cause chained; the page still
answers and only the vote is refused. Replies are remembered for the last
`RECENT_REPLIES` answers of this process: a vote on an older reply, or on one
made before a restart, is refused with a message. The report and the
promotion of feedback to example questions are in qa/feedback/review.py.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Sequence

from qa.errors import FeedbackError, FeedbackStoreError

# Each step takes the schema one version up; append steps, never edit one that shipped.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # version 1
        """CREATE TABLE feedback (
            id          INTEGER PRIMARY KEY,
            kind        TEXT NOT NULL CHECK (kind IN ('refusal', 'like', 'dislike')),
            at          TEXT NOT NULL,              -- UTC, ISO 8601 to the second
            question    TEXT NOT NULL,
            history     TEXT NOT NULL DEFAULT '[]', -- JSON list: the conversation's earlier questions (votes)
            refused     INTEGER NOT NULL DEFAULT 0, -- the engine said the articles do not answer it
            answer      TEXT,                       -- the answer sentence, verbatim from the article
            source      TEXT,                       -- its article (file name in the corpus folder)
            title       TEXT,                       -- that article's title
            section     TEXT,                       -- and section
            generation  TEXT NOT NULL DEFAULT '',   -- the index generation that answered
            comment     TEXT,                       -- a thumbs-down's optional comment, as typed
            reply       TEXT,                       -- the reply voted on: one vote per reply
            promoted_at TEXT,                       -- when it became an example question (qa/feedback/review.py)
            promoted_to TEXT                        -- the question-bank file it went to
        )""",
        "CREATE UNIQUE INDEX feedback_reply ON feedback (reply) WHERE reply IS NOT NULL",
        "CREATE INDEX feedback_kind_at ON feedback (kind, at)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

KINDS = ("refusal", "like", "dislike")
# Replies a vote can still refer to: about as many answers as a busy page gives in
# half an hour; each keeps a question and at most HISTORY_TURNS earlier ones.
RECENT_REPLIES = 4096
HISTORY_TURNS = 10
# Seconds a write waits for another process's lock on the file before the vote is refused.
LOCK_TIMEOUT_S = 5.0
# Seconds a write waits for its turn among this process's writers. A turn is one
# short transaction, so a queue this slow means the disk or the file is stuck.
QUEUE_TIMEOUT_S = 30.0

UNAVAILABLE = "Sorry, your feedback could not be saved right now. The answers are not affected."


def now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime | None = None) -> str:
    """A moment as stored: UTC, ISO 8601 to the second ('2026-11-30T13:45:12+00:00'), so text order is time order."""
    moment = moment or now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------- replies


@dataclass(frozen=True)
class Reply:
    """What a vote on one reply records: taken when the reply was made, kept in memory until then."""

    question: str
    history: tuple[str, ...]  # the earlier questions of the conversation, oldest first
    refused: bool
    answer: str | None
    source: str | None
    title: str | None
    section: str | None
    generation: str

    @classmethod
    def from_result(cls, result, history: Sequence[str], generation: str,
                    max_chars: int | None = None) -> "Reply":
        """From an engine `Result` (qa/answering/result.py) and the earlier questions it was asked with."""
        earlier = [h for h in history if isinstance(h, str) and h.strip()
                   and (max_chars is None or len(h) <= max_chars)]  # as the engine reads them
        source = result.answer_source if result.found else None
        return cls(question=result.question, history=tuple(earlier[-HISTORY_TURNS:]), refused=not result.found,
                   answer=result.answer if result.found else None,
                   source=source.source if source else None, title=source.title if source else None,
                   section=source.section if source else None, generation=generation)


class RecentReplies:
    """The last `capacity` replies by id, so a vote (given later, by id) finds what it refers to. Thread-safe."""

    def __init__(self, capacity: int = RECENT_REPLIES) -> None:
        self.capacity = capacity
        self._replies: OrderedDict[str, Reply] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, reply: Reply) -> str:
        reply_id = "r" + secrets.token_hex(8)  # not guessable: nobody votes on another person's reply
        with self._lock:
            self._replies[reply_id] = reply
            while len(self._replies) > self.capacity:
                self._replies.popitem(last=False)
        return reply_id

    def get(self, reply_id: str) -> Reply | None:
        with self._lock:
            return self._replies.get(reply_id) if isinstance(reply_id, str) else None

    def __len__(self) -> int:
        return len(self._replies)


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Entry(Reply):
    """One row of the database: a vote, with the reply it is about; or a refusal (question, generation, time)."""

    id: int
    kind: str  # "refusal" | "like" | "dislike"
    at: str
    comment: str | None
    promoted_at: str | None
    promoted_to: str | None

    def to_dict(self) -> dict:
        row = {"id": self.id, "kind": self.kind, "at": self.at}
        row.update((f.name, getattr(self, f.name)) for f in fields(Reply))
        row.update(history=list(self.history), comment=self.comment, promoted_at=self.promoted_at,
                   promoted_to=self.promoted_to)
        return row


_COLUMNS = ("id, kind, at, question, history, refused, answer, source, title, section, generation, comment, "
            "promoted_at, promoted_to")


def _entry(row: tuple) -> Entry:
    (id_, kind, at, question, history, refused, answer, source, title, section, generation, comment,
     promoted_at, promoted_to) = row
    try:
        earlier = tuple(str(h) for h in json.loads(history))
    except (TypeError, ValueError):
        earlier = ()
    return Entry(question=question, history=earlier, refused=bool(refused), answer=answer, source=source,
                 title=title, section=section, generation=generation, id=id_, kind=kind, at=at, comment=comment,
                 promoted_at=promoted_at, promoted_to=promoted_to)


# ---------------------------------------------------------------------------- the store


class _WriterQueue:
    """One lock per database file for this process's writers (a waiting writer sleeps until it is free)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def lock_for(self, path: Path) -> threading.Lock:
        key = str(path.resolve())
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


_WRITERS = _WriterQueue()


class FeedbackStore:
    """The feedback database at `path`; each call opens, uses and closes its own connection."""

    def __init__(self, path: Path | str, comment_chars: int = 500, timeout: float = LOCK_TIMEOUT_S,
                 queue_timeout: float = QUEUE_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.comment_chars = comment_chars
        self.timeout = timeout
        self.queue_timeout = queue_timeout

    @classmethod
    def from_settings(cls, settings) -> "FeedbackStore | None":
        """The store the settings name; None when feedback logging is turned off."""
        if not settings.feedback_log:
            return None
        return cls(settings.feedback_db, settings.feedback_comment_chars)

    # ------------------------------------------------------------------ writing

    def log_refusal(self, question: str, generation: str = "", at: datetime | None = None) -> int:
        """A question the articles did not answer: the question, the generation and the time only."""
        with self._writing() as conn:
            cursor = conn.execute("INSERT INTO feedback (kind, at, question, refused, generation) "
                                  "VALUES ('refusal', ?, ?, 1, ?)", (timestamp(at), question, generation))
            return cursor.lastrowid

    def record_vote(self, reply_id: str, reply: Reply, liked: bool, comment: str | None = None,
                    at: datetime | None = None) -> int:
        """A thumbs-up or -down on a reply; replaces an earlier vote on the same reply. Returns its row id."""
        comment = self.check_comment(comment)
        if liked and comment:
            raise FeedbackError("A comment goes with a thumbs-down; a thumbs-up is stored without one.")
        with self._writing() as conn:
            return conn.execute(
                "INSERT INTO feedback (kind, at, question, history, refused, answer, source, title, section, "
                "generation, comment, reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (reply) WHERE reply IS NOT NULL DO UPDATE SET kind = excluded.kind, "
                "at = excluded.at, comment = excluded.comment RETURNING id",
                ("like" if liked else "dislike", timestamp(at), reply.question,
                 json.dumps(list(reply.history), ensure_ascii=False), int(reply.refused), reply.answer,
                 reply.source, reply.title, reply.section, reply.generation, comment, reply_id)).fetchone()[0]

    def withdraw_vote(self, reply_id: str) -> bool:
        """Remove the vote on this reply (its thumb clicked again); False if there was none."""
        with self._writing() as conn:
            return conn.execute("DELETE FROM feedback WHERE reply = ?", (reply_id,)).rowcount > 0

    def check_comment(self, comment: str | None) -> str | None:
        """The comment as it will be stored (surrounding space removed; empty is none), or FeedbackError."""
        if comment is None:
            return None
        if not isinstance(comment, str):
            raise FeedbackError("A comment must be text.")
        text = comment.strip()
        if len(text) > self.comment_chars:
            raise FeedbackError(f"A comment can be at most {self.comment_chars:,} characters; "
                                f"this one has {len(text):,}.")
        return text or None

    def mark_promoted(self, ids: Sequence[int], bank_file: str, at: datetime | None = None) -> None:
        with self._writing() as conn:
            conn.executemany("UPDATE feedback SET promoted_at = ?, promoted_to = ? WHERE id = ?",
                             [(timestamp(at), bank_file, i) for i in ids])

    def delete(self, ids: Sequence[int] = (), before: datetime | None = None, everything: bool = False) -> int:
        """Delete rows by id, older than `before`, or all; the freed pages are overwritten. Returns the count."""
        with self._writing(secure=True) as conn:
            if everything:
                count = conn.execute("DELETE FROM feedback").rowcount
            elif before is not None:
                count = conn.execute("DELETE FROM feedback WHERE at < ?", (timestamp(before),)).rowcount
            else:
                count = conn.execute(f"DELETE FROM feedback WHERE id IN ({','.join('?' * len(ids))})",
                                     [int(i) for i in ids]).rowcount if ids else 0
        self._checkpoint()
        return count

    # ------------------------------------------------------------------ reading

    def entries(self, since: datetime | None = None, kinds: Sequence[str] = KINDS) -> list[Entry]:
        """Rows of these kinds from `since` on, oldest first; none when the database does not exist yet."""
        if not self.path.exists():
            return []
        marks = ",".join("?" * len(kinds))
        with self._reading() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM feedback WHERE kind IN ({marks}) AND at >= ? "
                                "ORDER BY at, id", (*kinds, timestamp(since) if since else "")).fetchall()
        return [_entry(row) for row in rows]

    def get(self, ids: Sequence[int]) -> list[Entry]:
        """These rows, in the order asked; an unknown id is a FeedbackError naming it."""
        if not self.path.exists():
            raise FeedbackError(f"no feedback has been recorded yet ({self.path} does not exist)")
        with self._reading() as conn:
            found = {row[0]: _entry(row) for row in conn.execute(
                f"SELECT {_COLUMNS} FROM feedback WHERE id IN ({','.join('?' * len(ids))})", [int(i) for i in ids])}
        unknown = [str(i) for i in ids if int(i) not in found]
        if unknown:
            raise FeedbackError(f"no feedback with id {', '.join(unknown)} in {self.path}")
        return [found[int(i)] for i in ids]

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackStoreError(f"cannot open the feedback database {self.path}: {exc}") from exc
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # safe in WAL: a crash loses at most the last votes
            self._ensure_schema(conn)
            yield conn
        except sqlite3.Error as exc:
            raise FeedbackStoreError(f"the feedback database {self.path} cannot be used: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def _writing(self, secure: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction: this process's turn first, then the file's write lock at once
        (BEGIN IMMEDIATE: no upgrade deadlock between writers)."""
        with self._turn():
            with self._connection() as conn:
                if secure:
                    conn.execute("PRAGMA secure_delete = ON")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    _rollback(conn)
                    raise
                conn.execute("COMMIT")

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's writers to this file, one at a time; refused if the queue does not move."""
        lock = _WRITERS.lock_for(self.path)
        if not lock.acquire(timeout=self.queue_timeout):
            raise FeedbackStoreError(f"the feedback database {self.path} cannot be used: database is locked "
                                     f"(this process's writers have not moved for {self.queue_timeout:g} s)")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            yield conn

    def _checkpoint(self) -> None:
        """Copy the WAL into the file and empty it, so deleted rows leave no copy in the -wal file."""
        with self._connection() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @staticmethod
    def _ensure_schema(conn: sqlite3.Connection) -> None:
        """Create or migrate the schema to SCHEMA_VERSION; cheap when it is current (one pragma read)."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise FeedbackStoreError(f"the feedback database has schema version {version}, newer than this "
                                     f"program's {SCHEMA_VERSION}: it was written by a newer version")
        conn.execute("PRAGMA journal_mode = WAL")  # kept by the file from now on
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have just done it
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            _rollback(conn)
            raise
        conn.execute("COMMIT")


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction; the error that caused it is the one worth reporting."""
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


__all__ = ["FeedbackStore", "Entry", "Reply", "RecentReplies", "SCHEMA_VERSION", "MIGRATIONS", "KINDS",
           "UNAVAILABLE", "timestamp"]
