"""The chat page's conversation, without the page: a message in, the reply's HTML out; votes on replies.

Owns what app.py's chat, API and feedback events do, for one engine
(`qa.serving.interface.AnswersQuestions`: an `Engine` here, or the `EngineProcess` the
page starts) and one feedback store, held by a `Chat`:

- `respond(message, history)`: ask the engine with the conversation so far
  (Gradio's messages list; the questions in it are stored escaped and read
  back as typed), render the reply (qa/serving/render.py), add the note that answers
  will improve shortly while a better model or index is prepared, and tag it
  with the id a vote names; a question that cannot be asked gets the reason,
  and an unexpected error a plain apology (the console gets the traceback);
- `respond_when_ready`: while nothing answers yet, the start-up status as the
  reply, refreshed, then the answer;
- votes (`cast_vote`, `feedback_api`): what a vote on each recent reply
  records is kept in memory under its id (`qa.feedback.store.RecentReplies`) and
  written by `qa.feedback.store.FeedbackStore` when someone votes; a refusal is
  logged by itself; a database that cannot be written refuses the vote,
  never the answer;
- the articles panel and the engine's status, whose failure to say is a
  status too.

No Gradio here: app.py wires these to the page, and tests call them with an
engine over the fake embedder, in the fast tier.
"""

from __future__ import annotations

import html
import logging
import re
import time
from typing import Any, Callable, Sequence

from qa.errors import FeedbackError, FeedbackStoreError, QAError, QuestionError
from qa.feedback.store import UNAVAILABLE, FeedbackStore, RecentReplies, Reply
from qa.serving.page import INTRO, TITLE, PageText
from qa.serving.render import format_articles_panel, format_message, format_reply, format_waiting, with_note
from qa.serving.interface import AnswersQuestions, ask_arguments
from qa.serving.status import FAILED, STARTING, StartupStatus, improving_note, unavailable

log = logging.getLogger("app")

NOTE = ("Answers are quotes from the articles, not medical advice. "
        "In an emergency, call your local emergency number.")
FAILURE = "Sorry, something went wrong on our side while answering. Please try again."
STARTING_UP = "The app is still starting; please try again in a moment."
# A question asked before anything answers shows the status, refreshed this often (and asked the moment
# the engine answers), for at most this long (then it is asked anyway, and waits in the engine: qa/serving/service.py).
WAIT_POLL_S = 1.0
WAIT_FOR_ENGINE_S = 900.0
VOTES = {"up": True, "down": False}
_REPLY_ID = re.compile(r'data-reply="(r[0-9a-f]{16})"')


def message_text(content: Any) -> str:
    """The text of a history message's content: a string, or Gradio 6's list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, (list, tuple)):
        return " ".join(t for t in (message_text(part) for part in content) if t)
    return ""  # files and components carry no question


def earlier_questions(history: Sequence[Any] | None) -> list[str]:
    """The user's earlier messages, oldest first, as the engine's follow-up history.

    The chat stores questions escaped (app.py's `PlainTextChat`); unescaping gives back what was typed.
    """
    questions = []
    for message in history or []:
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        text = html.unescape(message_text(content)).strip()
        if role == "user" and text:
            questions.append(text)
    return questions


def reply_id_in(value: Any) -> str | None:
    """The reply id in a chat message as Gradio hands it back (a string, or lists and dicts of parts)."""
    if isinstance(value, str):
        found = _REPLY_ID.search(value)
        return found.group(1) if found else None
    parts = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((found for found in map(reply_id_in, parts) if found), None)


class Chat:
    """One page's conversation with one engine. `engine` None: the app is still starting.
    `feedback` None: nothing is stored, and replies carry no vote id."""

    def __init__(self, engine: AnswersQuestions | None = None, feedback: FeedbackStore | None = None,
                 page: PageText | None = None) -> None:
        self.engine = engine
        self.feedback = feedback
        self.page = page or PageText(TITLE, INTRO, ())
        self.replies = RecentReplies()  # what a vote on each recent reply records, by reply id

    def empty_prompt(self) -> str:
        """What an empty message gets: a nudge, with the page's first example question."""
        return (f"Please type a question, for example: “{self.page.examples[0]}”." if self.page.examples
                else "Please type a question.")

    # ------------------------------------------------------------------ asking

    def respond(self, message: str, history: list | None = None) -> str:
        """The chat function: ask the engine with the conversation so far, return the formatted reply.

        `history` is Gradio's messages list ({"role", "content"} dicts, oldest first).
        """
        engine = self.engine
        if engine is None:
            return format_message(STARTING_UP)
        if not isinstance(message, str) or not message.strip():
            return format_message(self.empty_prompt())
        try:
            earlier = earlier_questions(history)
            result = engine.ask(message, earlier)
            reply = format_reply(result, engine.articles() if result.kind == "not_found" and not result.found else ())
            if result.kind != "small_talk":
                reply = with_note(reply, improving_note(self.status()))
            return self.remember_reply(result, earlier, reply)
        except QuestionError as exc:  # too long, or otherwise not askable: say why
            return format_message(str(exc))
        except QAError as exc:
            log.warning("question failed: %s", exc)
            return format_message(f"Sorry, the question could not be answered: {exc}")
        except Exception:  # never a traceback in the chat; the console gets it
            log.exception("unexpected error while answering")
            return format_message(FAILURE)

    def respond_when_ready(self, message: str, history: list | None = None):
        """The page's chat function: while nothing answers yet (the first index is being built), the reply is
        the start-up status, refreshed; then it becomes the answer (`respond`)."""
        asked = time.monotonic()
        while self.engine is not None and isinstance(message, str) and message.strip() \
                and not self.answering() and time.monotonic() - asked < WAIT_FOR_ENGINE_S:
            status = self.status()
            if status.answering or status.stage == FAILED:
                break
            yield format_waiting(status, message)
            self.wait_for_engine(WAIT_POLL_S)
        yield self.respond(message, history)

    def ask(self, question: str, history: list[str] | str | None = None) -> dict:
        """What `python -m qa ask --json` prints, for scripts; QAError says why a question cannot be asked."""
        if self.engine is None:
            raise QAError(STARTING_UP)
        if isinstance(history, (str, tuple)):
            history = [history] if isinstance(history, str) else list(history)
        return self.engine.ask(*ask_arguments(question, history)).to_dict()

    def answering(self) -> bool:
        """Whether the engine answers now, known without a round trip to its process (once it has loaded, a
        question goes straight to it: no status is asked for first)."""
        try:
            self.engine.wait_ready(0)
        except QAError:
            return False
        return True

    def wait_for_engine(self, seconds: float) -> None:
        """Up to `seconds`, and no longer than until the engine answers: a waiting question is asked the
        moment the first index is loaded, not at the next refresh of its status."""
        try:
            self.engine.wait_ready(seconds)
        except QAError:
            pass  # still starting, or failed to start: the next status says which

    def status(self) -> StartupStatus:
        """The engine's start-up status (qa/serving/status.py); its failure to say is a status too."""
        if self.engine is None:
            return StartupStatus(STARTING, None, message="The app is starting.")
        try:
            return self.engine.status()
        except QAError as exc:
            return unavailable(exc)

    def articles_panel(self, status: StartupStatus | None = None) -> str:
        """The articles panel for the engine in this start-up status (asked when not given). Before the first
        index answers, a line saying the list follows (asking the engine would wait for it)."""
        if self.engine is None:
            return ""
        status = status or self.status()
        if not status.answering:
            return '<div class="qa-panel"><h3>Indexed articles</h3><p>Listed here once the index is built.</p></div>'
        try:
            return format_articles_panel(self.engine.articles(), self.engine.built_at())
        except QAError as exc:
            return format_message(f"The list of articles is unavailable: {exc}")

    # ------------------------------------------------------------------ feedback

    def remember_reply(self, result, earlier: list[str], reply: str) -> str:
        """The reply, tagged with the id a vote on it names; a refusal is also logged. Feedback off: as it is."""
        if self.feedback is None:
            return reply
        try:
            generation = self.engine.generation()
            reply_id = self.replies.add(Reply.from_result(result, earlier, generation,
                                                          self.engine.settings.max_question_chars))
            if result.kind in ("not_found", "may_help"):  # not small talk, nor another language: nothing to promote
                self.feedback.log_refusal(result.question, generation)
        except FeedbackError as exc:
            log.warning("unanswered question not logged: %s (cause: %s)", exc, exc.__cause__)
        except Exception:  # noqa: BLE001 - bookkeeping never costs the person the answer
            log.exception("feedback bookkeeping failed; the reply goes out without a vote id")
            return reply
        return re.sub(r"^<([^>]*)>", lambda tag: f'<{tag.group(1)} data-reply="{reply_id}">', reply, count=1)

    def cast_vote(self, reply_id: str | None, vote: str, comment: str = "") -> str:
        """Store a vote ("up", "down", or "none" to withdraw one) on a reply; the message for the person.

        Raises FeedbackError with that message when the vote cannot be taken."""
        if self.feedback is None:
            raise FeedbackError("Feedback is turned off on this server.")
        if vote not in (*VOTES, "none"):
            raise FeedbackError(f'The vote must be "up", "down" or "none", not {vote!r}.')
        reply = self.replies.get(reply_id) if reply_id else None
        if reply is None:
            raise FeedbackError("This reply can no longer be rated (it is older than the page's memory of "
                                "replies, or from before a restart): ask the question again to rate its answer."
                                if reply_id else "There is no answer to rate in this message.")
        if vote == "none":
            self.feedback.withdraw_vote(reply_id)
            return "Your vote is withdrawn."
        self.feedback.record_vote(reply_id, reply, VOTES[vote], comment or None)
        if VOTES[vote]:
            return "Thanks! Your 👍 is saved."
        return "Thanks, your comment is saved." if comment else "Thanks, your 👎 is saved. What was wrong? (optional)"

    def feedback_api(self, reply_id: str, vote: str, comment: str = "") -> dict:
        """Vote on a reply of /chat. `reply_id`: the reply's data-reply attribute; `vote`: "up", "down" or
        "none" (withdraw); `comment`: optional, with "down" only. Returns {"saved": bool, "message": str}."""
        message, saved = feedback_message(lambda: self.cast_vote(reply_id, vote, comment or ""))
        return {"saved": saved, "message": message}


def feedback_message(action: Callable[[], str]) -> tuple[str, bool]:
    """(message, saved) of a feedback action; a database fault is logged here and shown as UNAVAILABLE."""
    try:
        return action(), True
    except FeedbackStoreError as exc:
        log.warning("feedback not saved: %s (cause: %s)", exc, exc.__cause__)
        return UNAVAILABLE, False
    except FeedbackError as exc:
        return str(exc), False


__all__ = ["Chat", "earlier_questions", "message_text", "reply_id_in", "feedback_message", "NOTE", "FAILURE",
           "VOTES"]
