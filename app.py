"""The product's chat page: `python app.py` serves questions about the articles.

Owns:
- start-up: command line and environment (QA_HOST / QA_PORT, plus the
  library's QA_INDEX_DIR / QA_CORPUS_DIR / QA_MODEL); the model and index are
  loaded ONCE, in the engine's own process (`qa.service.EngineProcess`,
  started first so its imports overlap gradio's), building the index first
  when it is missing or stale; the page is served meanwhile;
- start-up a person can see (`qa.startup.StartupStatus`): the stage, its
  sentence and a progress bar with the share done and the time left, beside
  the chat until nothing is left to prepare; a question asked before anything
  answers gets that status as its reply, refreshed, then the answer
  (`respond_when_ready`); an answer given while a better model or index is
  prepared says that answers will improve shortly; `GET /ready`, JSON for
  scripts and load balancers (200 once questions are answered, 503 before);
- formatting: turning an engine `Result` into the reply shown in the chat:
  first the line to call the emergency number when the question sounds
  like an emergency, then the answer sentence (with the sentence it points
  back to, or inside its whole list) + numbered citation, collapsible
  sources with a plain label each ("strong match") and the answer
  highlighted, their scores behind a toggle; or a plain "not found" with the
  articles' titles; or the short reply to a greeting or thanks;
- the page: its title, intro line and example questions (settings, else
  derived from the corpus: qa/page.py), chat (endpoint `/chat`, the page's
  own), the not-medical-advice note, the panel listing the indexed
  articles, and the start-up panel above it (which model answers);
- `/ask`, the endpoint for scripts: a question and the earlier questions in,
  the JSON object `python -m qa ask --json` prints out; the same as plain
  JSON over HTTP, `POST /api/ask`, is qa/http_api.py's, mounted here;
- a quiet server log: one line per start-up stage, library progress bars
  only on a terminal, no library deprecation notices (`quiet_libraries`);
- feedback: 👍 / 👎 on each reply (Gradio's like event), an optional comment
  on a 👎, and the endpoint `/feedback` for scripts. Each reply made from an
  engine result carries an id (`data-reply`); what a vote on it records is
  kept in memory under that id (`qa.feedback.RecentReplies`) and written by
  `qa.feedback.FeedbackStore` when someone votes. A refusal is logged by
  itself. A database that cannot be written refuses the vote, never the
  answer.

Does not own: anything about finding or choosing answers; that is `qa/`.
The UI only formats. `respond(message, history)` answers one message (the
page's chat function, `respond_when_ready`, puts the start-up status before
it) and the `format_*` helpers are pure, so tests call them with real results.

Safety: every piece of text that comes from the person or from the articles
goes through `escape_text()` (html.escape plus entity-encoding of Markdown
syntax) before it is put into a reply, and the person's own messages are
stored that way too (`PlainTextChat`), so markup shows as the text typed.
Gradio's chatbot sanitizes HTML as well, but the page does not rely on it.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import re
import sys
import time
import warnings
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

from qa.errors import FeedbackError, FeedbackStoreError, QAError, QuestionError
from qa.feedback import UNAVAILABLE, FeedbackStore, RecentReplies, Reply
from qa.service import EngineProcess
from qa.settings import Settings
from qa.startup import FAILED, READY, STARTING, StartupStatus, improving_note, waiting_note
from qa.triage import EMERGENCY_LINES, triage

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a private server


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the question-answering chat page.")
    parser.add_argument("--host", default=os.environ.get("QA_HOST") or "127.0.0.1",
                        help="address to listen on (env QA_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (env QA_PORT; default 7860)")
    # The same names as `python -m qa`; the old spellings --index-dir/--corpus-dir still work.
    parser.add_argument("--index", "--index-dir", dest="index", help="index folder (env QA_INDEX_DIR)")
    parser.add_argument("--corpus", "--corpus-dir", dest="corpus", help="articles folder (env QA_CORPUS_DIR)")
    parser.add_argument("--model", help="embedding model (env QA_MODEL)")
    parser.add_argument("--feedback-db", help="feedback database (env QA_FEEDBACK_DB; default data/feedback.sqlite3)")
    parser.add_argument("--store", choices=("faiss", "milvus"),
                        help="where the vectors are searched (env QA_STORE; default faiss)")
    parser.add_argument("--milvus-uri", help="with --store milvus: a Milvus server (env QA_MILVUS_URI; default a "
                                             "milvus-lite file in the index folder)")
    parser.add_argument("--title", help="the page's title (env QA_PAGE_TITLE; default: Ask the articles)")
    parser.add_argument("--intro", help="the line under the title (env QA_PAGE_INTRO; default: what an answer is)")
    parser.add_argument("--example", action="append", dest="examples", metavar="QUESTION",
                        help="an example question, repeatable (env QA_PAGE_EXAMPLES, separated by |; "
                             "default: one per article from the question bank)")
    args = parser.parse_args(argv)
    if args.port is None:
        try:
            args.port = int(os.environ.get("QA_PORT") or 7860)
        except ValueError:
            parser.error(f"QA_PORT must be a port number, got {os.environ['QA_PORT']!r}")
    return args


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env(index_dir=args.index, corpus_dir=args.corpus, model=args.model,
                             feedback_db=args.feedback_db, store=args.store, milvus_uri=args.milvus_uri,
                             page_title=args.title, page_intro=args.intro,
                             page_examples=tuple(args.examples) if args.examples else None)


def quiet_libraries() -> None:
    """The server's log says what the product does, one line per stage: the libraries' progress bars
    go to a terminal only, and their deprecation notices nowhere. Set in the environment, so the
    engine's process (started from here) inherits it; qa/service.py quiets its loggers too."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::FutureWarning")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")


# Cold start: the engine's process starts loading (torch, sentence-transformers,
# the model, the index) BEFORE this process imports gradio, so the two heavy
# imports run on both cores at once instead of one after the other
# (qa/service.py, docs/BENCHMARKS.md). Only when run as the app, never on import.
EARLY_ENGINE: EngineProcess | None = None
if __name__ == "__main__":
    quiet_libraries()
    try:
        _early_settings = settings_from_args(parse_args())
        print(f"Loading the model and the index from {_early_settings.index_dir} ...", flush=True)  # log line 1
        EARLY_ENGINE = EngineProcess(_early_settings)
    except QAError:
        pass  # main() reports the bad setting

import gradio as gr  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402  (gradio's server is FastAPI)
from fastapi.routing import APIRoute  # noqa: E402

from qa import http_api  # noqa: E402
from qa.answer import Passage, Result  # noqa: E402
from qa.engine import ArticleInfo, Engine, ask_arguments  # noqa: E402
from qa.page import INTRO, TITLE, PageText, page_text  # noqa: E402

log = logging.getLogger("app")

# The engine every question uses: an EngineProcess when served by main(), an
# in-process Engine when a test or another program sets it (same methods).
ENGINE: Engine | EngineProcess | None = None
# Where votes and refusals go (set by main() from the settings); None stores nothing and shows no vote buttons.
FEEDBACK: FeedbackStore | None = None
REPLIES = RecentReplies()  # what a vote on each recent reply records, by reply id

# What the page says about its corpus (qa/page.py): set by build_page() from the settings.
PAGE = PageText(TITLE, INTRO, ())
NOTE = ("Answers are quotes from the articles, not medical advice. "
        "In an emergency, call your local emergency number.")
FAILURE = "Sorry, something went wrong on our side while answering. Please try again."
# A question asked before anything answers shows the status, refreshed this often (and asked the moment
# the engine answers), for at most this long (then it is asked anyway, and waits in the engine: qa/service.py).
WAIT_POLL_S = 1.0
WAIT_FOR_ENGINE_S = 900.0
# Longest user message kept whole in the chat history (10x the question limit).
STORED_MESSAGE_CHARS = 20_000
# A list answer shows this many items at most before "N more items" (a table read as a list can be long).
LIST_ITEMS_SHOWN = 12

# Markdown would act on these even inside escaped text; as character
# references they are shown as themselves and mean nothing to the renderer.
_MARKDOWN_CHARS = {c: f"&#{ord(c)};" for c in "\\`*_[]{}()#+-!|~$:="}
_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\r|\n)\s*")


def empty_prompt() -> str:
    """What an empty message gets: a nudge, with the page's first example question."""
    return (f"Please type a question, for example: “{PAGE.examples[0]}”." if PAGE.examples
            else "Please type a question.")


# ---------------------------------------------------------------- formatting

def escape_text(text: str) -> str:
    """Untrusted text as inert characters for Markdown + HTML; `html.unescape` gives it back."""
    return "".join(_MARKDOWN_CHARS.get(ch) or html.escape(ch, quote=True) for ch in text)


def text_html(text: str) -> str:
    """Untrusted text for a reply: escaped, with its line breaks as <br> (so no blank lines,
    and the reply stays one HTML block that Markdown leaves alone)."""
    return _LINE_BREAKS.sub("<br>", escape_text(text))


def highlight(text: str, sentence: str | None) -> str:
    """The passage as HTML, with the answer sentence (when in it) in <mark>."""
    at = text.find(sentence) if sentence else -1
    if at < 0:
        return text_html(text)
    end = at + len(sentence)
    return f"{text_html(text[:at])}<mark>{text_html(sentence)}</mark>{text_html(text[end:])}"


def format_match(passage: Passage) -> str:
    """The passage's plain match label ("strong match", "partial match", "weak match"), styled by its kind."""
    kind = passage.match.split()[0]  # "strong" | "partial" | "weak"
    return f'<span class="qa-match qa-match-{kind}">{text_html(passage.match)}</span>'


def format_source(number: int, passage: Passage) -> str:
    """One numbered source: title, section, its plain match label, and the passage text."""
    return (f'<div class="qa-source"><div class="qa-source-head"><b>[{number}]</b> {text_html(passage.title)}'
            f' <span class="qa-section">› {text_html(passage.section)}</span> {format_match(passage)}</div>'
            f'<div class="qa-passage">{highlight(passage.text.strip(), passage.answer)}</div></div>')


def format_scores(passages: Sequence[Passage], result: Result) -> str:
    """The numbers behind the labels, folded away: for the curious, and for debugging."""
    rows = "".join(f'<li class="qa-score">[{number}] score {p.score:.4f} · similarity {p.dense:.2f} · '
                   f"keywords {p.lexical:.2f}</li>" for number, p in enumerate(passages, 1))
    return (f'<details class="qa-numbers"><summary>Scores</summary><ul>{rows}</ul>'
            f'<p class="qa-score">How clearly the articles answer: {result.margin:+.2f} (the refusal '
            f"model's log-odds over its bar; below 0 it says “not found”)</p></details>")


def format_articles_list(articles: Iterable[ArticleInfo]) -> str:
    return "<ul>" + "".join(f"<li>{text_html(a.title)}</li>" for a in articles) + "</ul>"


def format_emergency(line: str | None) -> str:
    """The line to call the emergency number, first in the reply, when the question sounds like one."""
    return f'<p class="qa-emergency" role="alert"><b>{text_html(line)}</b></p>' if line else ""


def format_answer(result: Result, citation: str) -> str:
    """The answer sentence, with the sentence it points back to before it, or inside its whole list.

    Everything here is article text, verbatim; the answer is marked when text around it is shown."""
    answer, context = result.answer, result.context
    if context.list is None:
        before = f'<span class="qa-before">{text_html(context.before)}</span> ' if context.before else ""
        sentence = f"<mark>{text_html(answer)}</mark>" if context.before else text_html(answer)
        return f'<p class="qa-answer">{before}{sentence}{citation}</p>'
    listed = context.list
    lead = (f'<p class="qa-lead">{highlight(listed.lead, answer if answer in listed.lead else None)}</p>'
            if listed.lead else "")
    hit = next((i for i, item in enumerate(listed.items) if answer in item), -1)
    shown = max(LIST_ITEMS_SHOWN, hit + 1)
    items = [f"<li>{highlight(item, answer if i == hit else None)}</li>" for i, item in enumerate(listed.items)]
    more = (f'<details class="qa-more"><summary>{len(items) - shown} more items</summary>'
            f'<ul>{"".join(items[shown:])}</ul></details>' if len(items) > shown else "")
    return (f'<div class="qa-answer qa-list-answer">{lead}<ul>{"".join(items[:shown])}</ul>{more}'
            f'<p class="qa-cite">{citation.strip()}</p></div>')


def format_reply(result: Result, articles: Sequence[ArticleInfo] = ()) -> str:
    """The reply for one engine result: the emergency line when there is one, then the answer +
    citation + collapsible sources; or not found; or the short reply to small talk."""
    emergency = format_emergency(result.emergency)
    if result.kind in ("small_talk", "not_english"):
        return f'<div class="qa-reply">{emergency}<p>{text_html(result.message)}</p></div>'
    if not (result.found and result.answer):
        covered = (f"<p>The articles cover:</p>{format_articles_list(articles)}"
                   "<p>Try asking in words these articles would use.</p>" if articles else "")
        return f'<div class="qa-reply">{emergency}<p>{text_html(result.message)}</p>{covered}</div>'
    passages = list(result.passages)
    source = result.answer_source
    if source is not None and source not in passages:  # it is always among the hits today; stay right anyway
        passages.insert(0, source)
    citation = f" <sup>[{passages.index(source) + 1}]</sup>" if source is not None else ""
    origin = (f'<p class="qa-origin">From <i>{text_html(source.title)}</i> — {text_html(source.section)}'
              f' {format_match(source)}</p>' if source is not None else "")
    searched = (f'<p class="qa-query">Read as a follow-up: “{text_html(result.query)}”</p>'
                if result.query != result.question else "")
    if result.expansions:
        words = "; ".join(f"{text_html(e.typed)} → {text_html(', '.join(e.adds))}" for e in result.expansions)
        searched += f'<p class="qa-query">Also searched with the articles’ words: {words}</p>'

    sources = "".join(format_source(i, p) for i, p in enumerate(passages, 1))
    return (f'<div class="qa-reply">{emergency}{format_answer(result, citation)}{origin}'
            f"<details><summary>Sources ({len(passages)} passages)</summary>{searched}{sources}"
            f"{format_scores(passages, result)}</details></div>")


def format_message(text: str) -> str:
    """A plain notice (prompt, refusal, error) as a reply."""
    return f'<div class="qa-reply"><p>{text_html(text)}</p></div>'


def format_articles_panel(articles: Sequence[ArticleInfo], built_at: str) -> str:
    rows = "".join(f"<tr><td>{text_html(a.title)}</td><td class='qa-num'>{a.passages}</td></tr>" for a in articles)
    return (f'<div class="qa-panel"><h3>Indexed articles</h3>'
            f"<table><thead><tr><th>Article</th><th class='qa-num'>Passages</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f'<p class="qa-built">Index built {text_html(format_time(built_at))}</p></div>')


def format_time(iso: str) -> str:
    """'2026-11-22T02:49:44+00:00' -> '2026-11-22 02:49 UTC'; anything unparsable as it is."""
    try:
        moment = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return iso or "at an unknown time"
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------- chat

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

    The chat stores questions escaped (`PlainTextChat`); unescaping gives back what was typed.
    """
    questions = []
    for message in history or []:
        role = message.get("role") if isinstance(message, dict) else getattr(message, "role", None)
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        text = html.unescape(message_text(content)).strip()
        if role == "user" and text:
            questions.append(text)
    return questions


def respond(message: str, history: list | None = None) -> str:
    """The chat function: ask the engine with the conversation so far, return the formatted reply.

    `history` is Gradio's messages list ({"role", "content"} dicts, oldest first).
    """
    if ENGINE is None:
        return format_message("The app is still starting; please try again in a moment.")
    if not isinstance(message, str) or not message.strip():
        return format_message(empty_prompt())
    try:
        earlier = earlier_questions(history)
        result = ENGINE.ask(message, earlier)
        reply = format_reply(result, ENGINE.articles() if result.kind == "not_found" and not result.found else ())
        if result.kind != "small_talk":
            reply = with_note(reply, improving_note(engine_status()))
        return remember_reply(result, earlier, reply)
    except QuestionError as exc:  # too long, or otherwise not askable: say why
        return format_message(str(exc))
    except QAError as exc:
        log.warning("question failed: %s", exc)
        return format_message(f"Sorry, the question could not be answered: {exc}")
    except Exception:  # never a traceback in the chat; the console gets it
        log.exception("unexpected error while answering")
        return format_message(FAILURE)


def respond_when_ready(message: str, history: list | None = None):
    """The page's chat function: while nothing answers yet (the first index is being built), the reply is
    the start-up status, refreshed; then it becomes the answer (`respond`)."""
    asked = time.monotonic()
    while ENGINE is not None and isinstance(message, str) and message.strip() \
            and not engine_answers() and time.monotonic() - asked < WAIT_FOR_ENGINE_S:
        status = engine_status()
        if status.answering or status.stage == FAILED:
            break
        yield format_waiting(status, message)
        wait_for_engine(WAIT_POLL_S)
    yield respond(message, history)


def engine_answers() -> bool:
    """Whether the engine answers now, known without a round trip to its process (once it has loaded, a
    question goes straight to it: no status is asked for first)."""
    try:
        ENGINE.wait_ready(0)
    except QAError:
        return False
    return True


def wait_for_engine(seconds: float) -> None:
    """Up to `seconds`, and no longer than until the engine answers: a waiting question is asked the
    moment the first index is loaded, not at the next refresh of its status."""
    try:
        ENGINE.wait_ready(seconds)
    except QAError:
        pass  # still starting, or failed to start: the next status says which


def engine_status() -> StartupStatus:
    """The engine's start-up status (qa/startup.py); its failure to say is a status too."""
    if ENGINE is None:
        return StartupStatus(STARTING, None, message="The app is starting.")
    try:
        return ENGINE.status()
    except QAError as exc:
        return StartupStatus(FAILED, None, message=f"The engine's state is unavailable: {exc}", error=str(exc))


def format_waiting(status: StartupStatus, question: str) -> str:
    """The reply to a question asked before anything answers: the emergency line when the question sounds
    like one (the engine's triage, qa/triage.py), then what is happening and that the answer will follow."""
    kind = triage(question).emergency
    emergency = format_emergency(EMERGENCY_LINES[kind] if kind else None)
    return (f'<div class="qa-reply qa-waiting">{emergency}{format_progress(status)}'
            f'<p>{text_html(waiting_note(status))}</p></div>')


def with_note(reply: str, note: str | None) -> str:
    """The reply with a note at its end (inside its block), e.g. that answers will improve shortly."""
    if not note or not reply.endswith("</div>"):
        return reply
    return f'{reply[:-len("</div>")]}<p class="qa-improving">{text_html(note)}</p></div>'


# ---------------------------------------------------------------- feedback

_REPLY_ID = re.compile(r'data-reply="(r[0-9a-f]{16})"')
VOTES = {"up": True, "down": False}


def remember_reply(result: Result, earlier: list[str], reply: str) -> str:
    """The reply, tagged with the id a vote on it names; a refusal is also logged. Feedback off: as it is."""
    if FEEDBACK is None:
        return reply
    try:
        generation = ENGINE.generation()
        reply_id = REPLIES.add(Reply.from_result(result, earlier, generation, ENGINE.settings.max_question_chars))
        if result.kind == "not_found":  # not small talk, nor a question in another language: nothing to promote
            FEEDBACK.log_refusal(result.question, generation)
    except FeedbackError as exc:
        log.warning("unanswered question not logged: %s (cause: %s)", exc, exc.__cause__)
    except Exception:  # noqa: BLE001 - bookkeeping never costs the person the answer
        log.exception("feedback bookkeeping failed; the reply goes out without a vote id")
        return reply
    return re.sub(r"^<([^>]*)>", lambda tag: f'<{tag.group(1)} data-reply="{reply_id}">', reply, count=1)


def reply_id_in(value: Any) -> str | None:
    """The reply id in a chat message as Gradio hands it back (a string, or lists and dicts of parts)."""
    if isinstance(value, str):
        found = _REPLY_ID.search(value)
        return found.group(1) if found else None
    parts = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((found for found in map(reply_id_in, parts) if found), None)


def cast_vote(reply_id: str | None, vote: str, comment: str = "") -> str:
    """Store a vote ("up", "down", or "none" to withdraw one) on a reply; the message for the person.

    Raises FeedbackError with that message when the vote cannot be taken."""
    if FEEDBACK is None:
        raise FeedbackError("Feedback is turned off on this server.")
    if vote not in (*VOTES, "none"):
        raise FeedbackError(f'The vote must be "up", "down" or "none", not {vote!r}.')
    reply = REPLIES.get(reply_id) if reply_id else None
    if reply is None:
        raise FeedbackError("This reply can no longer be rated (it is older than the page's memory of "
                            "replies, or from before a restart): ask the question again to rate its answer."
                            if reply_id else "There is no answer to rate in this message.")
    if vote == "none":
        FEEDBACK.withdraw_vote(reply_id)
        return "Your vote is withdrawn."
    FEEDBACK.record_vote(reply_id, reply, VOTES[vote], comment or None)
    if VOTES[vote]:
        return "Thanks! Your 👍 is saved."
    return "Thanks, your comment is saved." if comment else "Thanks, your 👎 is saved. What was wrong? (optional)"


def feedback_message(action) -> tuple[str, bool]:
    """(message, saved) of a feedback action; a database fault is logged here and shown as UNAVAILABLE."""
    try:
        return action(), True
    except FeedbackStoreError as exc:
        log.warning("feedback not saved: %s (cause: %s)", exc, exc.__cause__)
        return UNAVAILABLE, False
    except FeedbackError as exc:
        return str(exc), False


def feedback_api(reply_id: str, vote: str, comment: str = "") -> dict:
    """Vote on a reply of /chat. `reply_id`: the reply's data-reply attribute; `vote`: "up", "down" or "none"
    (withdraw); `comment`: optional, with "down" only. Returns {"saved": bool, "message": str}."""
    message, saved = feedback_message(lambda: cast_vote(reply_id, vote, comment or ""))
    return {"saved": saved, "message": message}


def feedback_status(message: str) -> str:
    return f'<p class="qa-feedback" role="status">{text_html(message)}</p>' if message else ""


def on_like(data: gr.LikeData):
    """A thumb clicked (or clicked again, which withdraws it): store it, and after a 👎 offer a comment box."""
    reply_id = reply_id_in(data.value)
    vote = {True: "up", False: "down"}.get(data.liked, "none")
    message, saved = feedback_message(lambda: cast_vote(reply_id, vote))
    asking = saved and vote == "down"
    return feedback_status(message), gr.update(visible=asking), reply_id if asking else None, ""


def on_comment(comment: str, reply_id: str | None):
    """The comment on the last 👎; kept in the box when it cannot be saved, so nothing typed is lost."""
    if not reply_id:
        return feedback_status("Give a 👎 first; the comment goes with it."), gr.update(visible=False), None, ""
    message, saved = feedback_message(lambda: cast_vote(reply_id, "down", comment or ""))
    return feedback_status(message), gr.update(visible=not saved), None if saved else reply_id, \
        "" if saved else comment


def feedback_controls(chatbot: gr.Chatbot) -> None:
    """The comment box shown after a 👎, the status line, and the events; nothing when feedback is off."""
    gr.api(feedback_api, api_name="feedback")
    if FEEDBACK is None:
        return
    last_disliked = gr.State(None)  # the reply the comment box is about
    with gr.Row(visible=False, elem_id="feedback-comment") as comment_row:
        comment = gr.Textbox(label=f"What was wrong with this answer? (optional, at most "
                                   f"{FEEDBACK.comment_chars:,} characters)", scale=4, elem_id="feedback-comment-text")
        send = gr.Button("Send", scale=1, elem_id="feedback-comment-send")
    status = gr.HTML(elem_id="feedback-status")
    outputs = [status, comment_row, last_disliked, comment]
    chatbot.like(on_like, None, outputs, show_progress="hidden", api_visibility="undocumented")
    for event in (send.click, comment.submit):
        event(on_comment, [comment, last_disliked], outputs, show_progress="hidden", api_visibility="undocumented")


# The stage in a few words, above the status's sentence (qa/startup.py's STAGES).
STAGE_WORDS = {"starting": "Starting up", "building": "Building the index", "tuning": "Preparing a better model",
               "updating": "Updating the index", "ready": "Ready", "failed": "Not ready"}


def format_progress(status: StartupStatus) -> str:
    """The stage, the status's sentence and, while something runs, a progress bar with the fraction done and
    the time left (a bar without a value, which browsers show as busy, while neither is known yet)."""
    head = f'<p class="qa-stage"><b>{text_html(STAGE_WORDS.get(status.stage, status.stage))}</b></p>'
    bar = ""
    if status.stage not in (READY, FAILED):
        known = status.fraction is not None
        value = f' value="{status.fraction:.3f}"' if known else ""
        done = [f"{status.fraction:.0%} done"] if known else []
        done += [f"about {format_seconds(status.seconds_left)} left"] if status.seconds_left else []
        bar = (f'<div class="qa-progress"><progress max="1"{value} aria-label="start-up progress"></progress>'
               f'<span class="qa-progress-text">{text_html(" · ".join(done) or "working…")}</span></div>')
    return f'{head}<p class="qa-status-text">{text_html(status.message)}</p>{bar}'


def format_seconds(seconds: float) -> str:
    """45 -> '45 s', 130 -> '2 min 10 s'."""
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s".replace(" 0 s", "")


def format_status(status: StartupStatus) -> str:
    """The start-up panel: the stage, what answers now, and what is still being prepared."""
    return (f'<div class="qa-status" data-stage="{html.escape(status.stage)}" role="status" aria-live="polite">'
            f"{format_progress(status)}</div>")


def status_line():
    """The start-up panel, the articles panel while they change, and the timer that refreshes both: stopped
    once nothing is left to prepare."""
    if ENGINE is None:
        return "", gr.update(), gr.Timer(active=True)
    status = engine_status()
    running = status.stage not in (READY, FAILED)
    # The articles are listed once the index answers; read again until nothing runs (a rebuild may add some).
    panel = articles_panel_for(status) if status.answering else gr.update()
    return format_status(status), panel, gr.Timer(active=running)


def articles_panel() -> str:
    """Re-read on each page load, so a rebuilt index shows up without a restart. Before the first index
    answers, a line saying the list follows (asking the engine would wait for it)."""
    if ENGINE is None:
        return ""
    return articles_panel_for(engine_status())


def articles_panel_for(status: StartupStatus) -> str:
    """The articles panel for the engine in this start-up status."""
    if not status.answering:
        return '<div class="qa-panel"><h3>Indexed articles</h3><p>Listed here once the index is built.</p></div>'
    try:
        return format_articles_panel(ENGINE.articles(), ENGINE.built_at())
    except QAError as exc:
        return format_message(f"The list of articles is unavailable: {exc}")


def readiness() -> JSONResponse:
    """GET /ready, for scripts and load balancers: {"ready", "stage", "model", "progress", "seconds_left",
    "message", "error"} (StartupStatus.readiness); HTTP 200 when questions are answered, 503 before."""
    body = engine_status().readiness()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


# Mounted on gradio's FastAPI app when it is made (launch's app_kwargs), before gradio's own routes:
# GET /ready, and the plain JSON API, POST /api/ask (qa/http_api.py).
READY_ROUTES = [APIRoute("/ready", readiness, methods=["GET"]), *http_api.routes(lambda: ENGINE, engine_status)]


# ---------------------------------------------------------------- page

class PlainTextChat(gr.ChatInterface):
    """A ChatInterface whose user bubbles show the question exactly as typed.

    Gradio renders user messages as Markdown + (sanitized) HTML, so
    `<img src=x onerror=...>` would show as a broken image instead of the text
    that was typed. Every user message enters the history through
    `_message_as_message_dict` (typing, examples, the API, retry), so it is
    escaped there; retry/undo take the last question back out through
    `_pop_last_user_message`, so it is unescaped there. Both are private
    Gradio 6 methods: tests/test_browser.py checks the result in a browser.
    """

    def _message_as_message_dict(self, message, role):
        if role == "user" and message is None:
            message = ""  # a null message from the API is an empty question, not a crash
        if role == "user" and isinstance(message, str):
            # The history keeps what was typed; a message far over the question limit
            # (refused anyway) is kept cut short rather than escaped whole, which took seconds.
            if len(message) > STORED_MESSAGE_CHARS:
                message = message[:STORED_MESSAGE_CHARS] + "…"
            message = escape_text(message)
        return super()._message_as_message_dict(message, role)

    def _pop_last_user_message(self, history):
        history, message = super()._pop_last_user_message(history)
        return history, html.unescape(message) if isinstance(message, str) else message


for _hook in ("_message_as_message_dict", "_pop_last_user_message"):  # fail loudly if Gradio changes
    if not hasattr(gr.ChatInterface, _hook):
        raise RuntimeError(f"gradio.ChatInterface has no {_hook}: revisit PlainTextChat in app.py")


CSS = """
.qa-header h1 { margin: 0 0 .2em; font-size: 1.6rem; font-weight: 600; }
.qa-intro { margin: 0 0 .5em; color: #374151; }
.qa-note { background: #fff7e6; border: 1px solid #f5c26b; border-radius: 8px; padding: .5em .8em;
           color: #5c3d00; font-size: .95rem; margin: 0; }
#chat .qa-reply p { margin: .15em 0; }
#chat .qa-reply .qa-answer { font-size: 1.05em; }
#chat .qa-origin, #chat .qa-query, #chat .qa-score, .qa-built { color: #6b7280; font-size: .85em; }
#chat .qa-reply ul { margin: .2em 0 .3em; }
#chat .qa-reply li { margin: 0; }
#chat .qa-reply details { margin-top: .5em; }
#chat .qa-reply summary { cursor: pointer; font-weight: 600; }
#chat .qa-source { margin: .8em 0 0; }
#chat .qa-section { color: #4b5563; }
#chat .qa-passage { margin: .25em 0 0; padding: .1em .8em; border-left: 3px solid #d1d5db; font-size: .93em; }
.qa-feedback { color: #374151; font-size: .9rem; margin: .3em 0 0; }
#chat .qa-emergency { background: #fef2f2; border: 1px solid #f87171; border-radius: 6px;
                      padding: .35em .6em; margin: 0 0 .5em !important; }
#chat .qa-emergency, #chat .qa-emergency b { color: #991b1b !important; }
#chat .qa-before { color: #4b5563; }
#chat .qa-list-answer .qa-lead { margin-bottom: 0; }
#chat .qa-list-answer .qa-cite { margin: 0; }
#chat .qa-match { font-size: .8em; font-weight: 500; padding: 0 .5em; border-radius: 999px; white-space: nowrap; }
#chat .qa-match-strong { background: #dcfce7; color: #166534; }
#chat .qa-match-partial { background: #fef3c7; color: #92400e; }
#chat .qa-match-weak { background: #f3f4f6; color: #4b5563; }
#chat .qa-numbers { margin-top: .8em; }
#chat .qa-numbers summary { font-weight: 400; color: #6b7280; font-size: .85em; }
#chat .qa-reply mark { background: #fde68a; color: inherit; padding: 0 .1em; border-radius: 2px; }
.qa-panel h3 { margin: 0 0 .5em; font-size: 1.1rem; font-weight: 600; }
.qa-panel table { width: 100%; border-collapse: collapse; font-size: .9rem; border: none !important; }
.qa-panel tr { border: none !important; }
.qa-panel th, .qa-panel td { text-align: left; padding: .35em .3em; border: none !important;
                             border-bottom: 1px solid #e5e7eb !important; }
.qa-panel th { font-weight: 600; }
.qa-panel .qa-num { text-align: right; }
.qa-built { margin-top: .6em; }
.qa-status { color: #374151; font-size: .9rem; margin: 0 0 .8em; }
.qa-status p, .qa-waiting p { margin: 0 0 .3em; }
.qa-progress { display: flex; align-items: center; gap: .5em; }
.qa-progress progress { flex: 1; height: .7em; }
.qa-progress-text { color: #4b5563; font-size: .85em; white-space: nowrap; }
#chat .qa-improving { color: #6b7280; font-size: .85em; margin-top: .6em !important; }
"""


# System fonts only: the page must not wait on Google Fonts (no internet here),
# and Gradio's bundled webfonts mix glyphs at semibold weight in Chromium.
THEME = gr.themes.Default(primary_hue="blue", font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica Neue",
                                                    "Arial", "Liberation Sans", "sans-serif"])


def validate_message(message: Any):
    """An empty message is not sent (no blank bubble in the chat): the prompt shows by the box instead."""
    text = message if isinstance(message, str) else ""
    return gr.validate(bool(text.strip()), empty_prompt())


def ask_api(question: str, history: list[str] | None = None) -> dict:
    """Ask the articles a question, for scripts. `history`: the earlier questions of the conversation,
    oldest first (a follow-up such as "why not?" needs them).

    Returns what `python -m qa ask --json` prints: {"question", "kind", "found", "emergency", "answer",
    "answer_source", "context", "passages": [{"source", "title", "section", "text", "match", "score", ...}]}.
    A question that cannot be asked (empty, too long) raises an error with the reason."""
    if ENGINE is None:
        raise gr.Error("The app is still starting; please try again in a moment.")
    if isinstance(history, str):
        history = [history]
    try:
        return ENGINE.ask(*ask_arguments(question, history)).to_dict()
    except QAError as exc:
        raise gr.Error(str(exc)) from None


def build_page(settings: Settings | None = None) -> gr.Blocks:
    """The page; its title, intro and examples come from `settings` or, unset, from the corpus."""
    global PAGE
    PAGE = page_text(settings or Settings.from_env())
    with gr.Blocks(title=PAGE.title, analytics_enabled=False) as page:
        gr.HTML(f'<div class="qa-header"><h1>{html.escape(PAGE.title)}</h1>'
                f'<p class="qa-intro">{html.escape(PAGE.intro)}</p>'
                f'<p class="qa-note" role="note"><b>Note:</b> {html.escape(NOTE)}</p></div>')
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = PlainTextChat(
                    respond_when_ready,
                    api_name="chat",
                    flagging_mode="never",  # votes go to the feedback database, not Gradio's CSV flags
                    examples=list(PAGE.examples) or None,
                    validator=validate_message,
                    chatbot=gr.Chatbot(
                        height=600, elem_id="chat", label="Conversation",
                        show_label=False,  # a floating label would cover the top line of the chat
                        placeholder="Ask a question about the articles.",
                        latex_delimiters=[]),  # the articles hold no maths: "$$" stays text
                    textbox=gr.Textbox(placeholder="Ask a question about the articles…",
                                       label="Your question", show_label=False, submit_btn=True,
                                       elem_id="question"),
                    fill_height=False,
                )
                feedback_controls(chat.chatbot)
            with gr.Column(scale=1, min_width=260):
                status = gr.HTML(elem_id="engine-status")
                panel = gr.HTML(elem_id="articles-panel")
        timer = gr.Timer(2.0)
        timer.tick(status_line, None, [status, panel, timer], api_visibility="undocumented", queue=False,
                   show_progress="hidden")
        page.load(status_line, None, [status, panel, timer], api_visibility="undocumented", queue=False)
        page.load(articles_panel, None, panel, api_visibility="undocumented", queue=False)
        gr.api(ask_api, api_name="ask")
    # The engine's process answers one question per core at once, each encode on
    # one onnxruntime thread (qa/service.py; docs/BENCHMARKS.md, http_load and
    # "Questions without torch"). Four at once keeps both cores busy and overlaps
    # the cheap parts (transport, formatting) without piling threads onto two
    # cores; more questions wait in the queue and see their position.
    # POST /api/ask (qa/http_api.py) does not go through this queue.
    # api_open=False: the REST shortcut /gradio_api/run/chat would otherwise run
    # respond() outside the queue and skip both limits (tests/test_serving.py).
    page.queue(default_concurrency_limit=4, max_size=64, api_open=False)
    return page


def open_engine(settings: Settings, say=None, embedder=None) -> Engine:
    """An in-process engine for ENGINE (tests, embedding the page elsewhere); `main()` uses a process."""
    global ENGINE
    ENGINE = Engine.open(settings, build="stale", say=say or (lambda text: print(text, flush=True)),
                         embedder=embedder)
    return ENGINE


def main(argv: Sequence[str] | None = None) -> int:
    global ENGINE, FEEDBACK
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        settings = settings_from_args(args)
    except QAError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 1
    if EARLY_ENGINE is not None and argv is None:
        engine = EARLY_ENGINE
    else:
        print(f"Loading the model and the index from {settings.index_dir} ...", flush=True)
        engine = EngineProcess(settings)
    ENGINE = engine
    FEEDBACK = FeedbackStore.from_settings(settings)
    print(f"Votes and unanswered questions go to {settings.feedback_db}." if FEEDBACK is not None
          else "Feedback is off (QA_FEEDBACK=off): nothing is stored.", flush=True)
    try:
        # Served at once: a question asked while the engine still loads waits for it.
        page = build_page(settings)
        page.launch(server_name=args.host, server_port=args.port, ssr_mode=False, quiet=True,
                    theme=THEME, css=CSS, footer_links=["api"], prevent_thread_lock=True,
                    app_kwargs={"routes": READY_ROUTES})
        print(f"Serving the page on {page.local_url} (questions wait until the engine is ready).", flush=True)
    except OSError as exc:  # e.g. the port is taken
        print(f"Cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        engine.close()
        return 1
    try:
        engine.wait_ready()
    except QAError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        page.close()
        engine.close()
        return 1
    print(f"Ready: {len(engine.articles())} articles, index built {engine.built_at()}.", flush=True)
    try:
        page.block_thread()  # until Ctrl-C or the process is stopped
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
