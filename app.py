"""The product's chat page: `python app.py` serves questions about the articles.

Owns the Gradio wiring, and nothing the library can do:
- start-up: command line and environment (QA_HOST / QA_PORT, plus the
  library's QA_INDEX_DIR / QA_CORPUS_DIR / QA_MODEL ...); the engine runs in a
  process of its own (`qa.serving.service.EngineProcess`, started first so its imports
  overlap gradio's), building the index first when it is missing or stale;
  the page is served meanwhile; gradio starts without the work it does for
  other pages (qa/serving/gradio_startup.py: its type stubs, pandas, the web
  app made once);
- the page: its title, intro line and example questions (qa/serving/page.py), the
  chat (endpoint `/chat`), the not-medical-advice note, the articles panel and
  the start-up panel above it, refreshed by a timer until nothing is left to
  prepare; `/ask` for scripts (what `python -m qa ask --json` prints);
  `GET /ready` for scripts and load balancers (200 once questions are
  answered, 503 before) and `POST /api/ask`, the same JSON in one plain
  request (qa/serving/http_api.py), mounted beside it; 👍 / 👎 on each reply, an optional comment on a 👎,
  and `/feedback` for scripts;
- a quiet server log, set up here with qa/serving/server_log.py: one line per
  start-up stage, library progress bars only on a terminal, a rejected request
  in one line instead of a traceback.

Does not own: what a message gets back, and the votes on it (qa/serving/chat.py's
`Chat`, one per page: `CHAT`); how a reply looks (qa/serving/render.py, pure HTML);
the start-up's stages and words (qa/serving/status.py); anything about finding or
choosing answers (qa/). The person's own messages are stored escaped
(`PlainTextChat`), so markup shows as the text typed.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import sys
from typing import Any, Sequence

from qa.errors import QAError
from qa.serving.gradio_startup import built_without_throwaway_apps, defer_pandas, skip_gradio_stubs
from qa.serving.server_log import quiet_libraries, quiet_rejections
from qa.serving.service import EngineProcess
from qa.settings import Settings

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


skip_gradio_stubs()
defer_pandas()

# Cold start: the engine's process starts loading (torch, sentence-transformers,
# the model, the index) BEFORE this process imports gradio, so the two heavy
# imports run on both cores at once instead of one after the other
# (qa/serving/service.py, docs/BENCHMARKS.md). Only when run as the app, never on import.
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

from qa.serving import http_api  # noqa: E402
from qa.serving.chat import NOTE, Chat, feedback_message, reply_id_in  # noqa: E402
from qa.feedback.store import FeedbackStore  # noqa: E402
from qa.serving.page import page_text  # noqa: E402
from qa.serving.render import STYLES, escape_text, feedback_status, format_status  # noqa: E402
from qa.serving.status import FAILED, READY  # noqa: E402

log = logging.getLogger("app")


# The page's conversation: its engine (an EngineProcess when served by main(); a test may give it an
# in-process Engine: both are qa.serving.interface.AnswersQuestions), its feedback store and its words.
CHAT = Chat()
# Longest user message kept whole in the chat history (10x the question limit).
STORED_MESSAGE_CHARS = 20_000


def respond_when_ready(message: str, history: list | None = None):
    """The chat function (qa/serving/chat.py): the start-up status while nothing answers, then the answer."""
    yield from CHAT.respond_when_ready(message, history)


def status_line():
    """The start-up panel, the articles panel while they change, and the timer that refreshes both: stopped
    once nothing is left to prepare."""
    if CHAT.engine is None:
        return "", gr.update(), gr.Timer(active=True)
    status = CHAT.status()
    running = status.stage not in (READY, FAILED)
    # The articles are listed once the index answers; read again until nothing runs (a rebuild may add some).
    panel = CHAT.articles_panel(status) if status.answering else gr.update()
    return format_status(status), panel, gr.Timer(active=running)


def articles_panel() -> str:
    """Re-read on each page load, so a rebuilt index shows up without a restart."""
    return CHAT.articles_panel()


def readiness() -> JSONResponse:
    """GET /ready, for scripts and load balancers: {"ready", "stage", "model", "progress", "seconds_left",
    "message", "error"} (StartupStatus.readiness); HTTP 200 when questions are answered, 503 before."""
    body = CHAT.status().readiness()
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


# Mounted on gradio's FastAPI app when it is made (launch's app_kwargs), before gradio's own routes:
# GET /ready, and the plain JSON API, POST /api/ask (qa/serving/http_api.py).
READY_ROUTES = [APIRoute("/ready", readiness, methods=["GET"]),
                *http_api.routes(lambda: CHAT.engine, lambda: CHAT.status())]


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


CSS = STYLES  # qa/serving/render.css: the look of the classes qa/serving/render.py writes


# System fonts only: the page must not wait on Google Fonts (no internet here),
# and Gradio's bundled webfonts mix glyphs at semibold weight in Chromium.
THEME = gr.themes.Default(primary_hue="blue", font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica Neue",
                                                    "Arial", "Liberation Sans", "sans-serif"])


def validate_message(message: Any):
    """An empty message is not sent (no blank bubble in the chat): the prompt shows by the box instead."""
    text = message if isinstance(message, str) else ""
    return gr.validate(bool(text.strip()), CHAT.empty_prompt())


def ask_api(question: str, history: list[str] | None = None) -> dict:
    """Ask the articles a question, for scripts. `history`: the earlier questions of the conversation,
    oldest first (a follow-up such as "why not?" needs them).

    Returns what `python -m qa ask --json` prints: {"question", "kind", "found", "emergency", "answer",
    "answer_source", "context", "passages": [{"source", "title", "section", "text", "match", "score", ...}]}.
    A question that cannot be asked (empty, too long) raises an error with the reason."""
    try:
        return CHAT.ask(question, history)
    except QAError as exc:
        raise gr.Error(str(exc)) from None


def feedback_api(reply_id: str, vote: str, comment: str = "") -> dict:
    """Vote on a reply of /chat. `reply_id`: the reply's data-reply attribute; `vote`: "up", "down" or "none"
    (withdraw); `comment`: optional, with "down" only. Returns {"saved": bool, "message": str}."""
    return CHAT.feedback_api(reply_id, vote, comment)


def on_like(data: gr.LikeData):
    """A thumb clicked (or clicked again, which withdraws it): store it, and after a 👎 offer a comment box."""
    reply_id = reply_id_in(data.value)
    vote = {True: "up", False: "down"}.get(data.liked, "none")
    message, saved = feedback_message(lambda: CHAT.cast_vote(reply_id, vote))
    asking = saved and vote == "down"
    return feedback_status(message), gr.update(visible=asking), reply_id if asking else None, ""


def on_comment(comment: str, reply_id: str | None):
    """The comment on the last 👎; kept in the box when it cannot be saved, so nothing typed is lost."""
    if not reply_id:
        return feedback_status("Give a 👎 first; the comment goes with it."), gr.update(visible=False), None, ""
    message, saved = feedback_message(lambda: CHAT.cast_vote(reply_id, "down", comment or ""))
    return feedback_status(message), gr.update(visible=not saved), None if saved else reply_id, \
        "" if saved else comment


def feedback_controls(chatbot: gr.Chatbot) -> None:
    """The comment box shown after a 👎, the status line, and the events; nothing when feedback is off."""
    gr.api(feedback_api, api_name="feedback")
    if CHAT.feedback is None:
        return
    last_disliked = gr.State(None)  # the reply the comment box is about
    with gr.Row(visible=False, elem_id="feedback-comment") as comment_row:
        comment = gr.Textbox(label=f"What was wrong with this answer? (optional, at most "
                                   f"{CHAT.feedback.comment_chars:,} characters)", scale=4, elem_id="feedback-comment-text")
        send = gr.Button("Send", scale=1, elem_id="feedback-comment-send")
    status = gr.HTML(elem_id="feedback-status")
    outputs = [status, comment_row, last_disliked, comment]
    chatbot.like(on_like, None, outputs, show_progress="hidden", api_visibility="undocumented")
    for event in (send.click, comment.submit):
        event(on_comment, [comment, last_disliked], outputs, show_progress="hidden", api_visibility="undocumented")


# The chat scrolls itself to the end of a new reply; on a phone-sized screen a long reply then hides its
# first line. When that line is the emergency line, it is brought back into view, once per reply.
EMERGENCY_IN_VIEW = """<script>
(() => {
  // A new reply's emergency line is held in view for HOLD_MS: gradio scrolls the chat to the end of
  // a reply whenever it renders more of it, which on a slow phone happens well after the line appears.
  // The person's own scrolling, typing or touch lets go at once.
  const HOLD_MS = 4000;
  let line = null, until = 0;
  const hold = () => { if (line && Date.now() < until) line.scrollIntoView({block: "start"}); };
  const release = () => { until = 0; };
  for (const kind of ["wheel", "touchstart", "keydown", "pointerdown"])
    window.addEventListener(kind, release, {capture: true, passive: true});
  new MutationObserver(() => {
    const fresh = document.querySelector('#chat [role="alert"]:not([data-shown])');
    if (fresh) { fresh.dataset.shown = "1"; line = fresh; until = Date.now() + HOLD_MS; }
    hold();
  }).observe(document.documentElement, {childList: true, subtree: true});
  document.addEventListener("scroll", hold, {capture: true, passive: true});
})();
</script>"""


def build_page(settings: Settings | None = None) -> gr.Blocks:
    """The page; its title, intro and examples come from `settings` or, unset, from the corpus."""
    CHAT.page = page_text(settings or Settings.from_env())
    words = CHAT.page
    with gr.Blocks(title=words.title, analytics_enabled=False) as page:
        gr.HTML(f'<div class="qa-header"><h1>{html.escape(words.title)}</h1>'
                f'<p class="qa-intro">{html.escape(words.intro)}</p>'
                f'<p class="qa-note" role="note"><b>Note:</b> {html.escape(NOTE)}</p></div>')
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chat = PlainTextChat(
                    respond_when_ready,
                    api_name="chat",
                    flagging_mode="never",  # votes go to the feedback database, not Gradio's CSV flags
                    examples=list(words.examples) or None,
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
    # one onnxruntime thread (qa/serving/service.py; docs/BENCHMARKS.md, http_load and
    # "Questions without torch"). Four at once keeps both cores busy and overlaps
    # the cheap parts (transport, formatting) without piling threads onto two
    # cores; more questions wait in the queue and see their position.
    # POST /api/ask (qa/serving/http_api.py) does not go through this queue.
    # api_open=False: the REST shortcut /gradio_api/run/chat would otherwise run
    # respond() outside the queue and skip both limits (tests/test_serving.py).
    page.queue(default_concurrency_limit=4, max_size=64, api_open=False)
    return page


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_rejections()
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
    CHAT.engine = engine
    CHAT.feedback = FeedbackStore.from_settings(settings)
    print(f"Votes and unanswered questions go to {settings.feedback_db}." if CHAT.feedback is not None
          else "Feedback is off (QA_FEEDBACK=off): nothing is stored.", flush=True)
    try:
        # Served at once: a question asked while the engine still loads waits for it.
        page = built_without_throwaway_apps(lambda: build_page(settings))
        page.launch(server_name=args.host, server_port=args.port, ssr_mode=False, quiet=True,
                    theme=THEME, css=CSS, head=EMERGENCY_IN_VIEW, footer_links=["api"], prevent_thread_lock=True,
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
