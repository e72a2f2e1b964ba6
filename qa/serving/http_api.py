"""Plain HTTP routes on the chat page's port, for scripts and other services: `POST /api/ask`.

Owns: the route, its request and error contract, and nothing else. app.py mounts
`routes(...)` beside `GET /ready` on gradio's FastAPI app, outside gradio's queue.

    POST /api/ask   {"question": "...", "history": ["earlier question", ...]}
    200             the JSON object `python -m qa ask --json` prints (Result.to_dict())
    400             {"error": reason}: not JSON, not an object of that shape, wrong types, an empty
                    or too long question (the reasons of qa.serving.engine.ask_request and clean_question)
    413             {"error": reason}: a body over MAX_BODY_BYTES
    503             while the engine starts: the body of GET /ready (StartupStatus.readiness()), with
                    Retry-After; also {"error": reason} when the engine stopped and is being restarted

One request is one question: no queue, no session, no lock. The body is read and checked
on the event loop (cheap), the engine's answer is waited for on a worker thread, so the loop
stays free; the engine process answers concurrent questions on all its cores
(qa/serving/service.py). A rejected request costs one log line, never a traceback; only an
unexpected exception is logged with its traceback (the client gets {"error"} and 500).

Does not own: checking a request's shape (qa/serving/interface.py) or its question (qa/serving/engine.py), start-up
status (qa/serving/status.py).
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any, Callable

from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from qa.errors import QAError, QuestionError
from qa.serving.interface import ask_request
from qa.serving.status import StartupStatus

log = logging.getLogger("qa.serving.http_api")

# A question is at most Settings.max_question_chars (2,000) and a history a few of them: a body
# this large is no question, and is refused before it is read whole.
MAX_BODY_BYTES = 1_000_000
RETRY_AFTER_S = 5  # what a 503 during start-up suggests; GET /ready says how far it is
LOGGED_CHARS = 200  # of a refusal's reason in the log line


def routes(engine: Callable[[], Any], status: Callable[[], StartupStatus]) -> list[APIRoute]:
    """The plain routes for the engine `engine()` returns (None while the app starts), whose start-up
    status `status()` gives (for the 503 body)."""

    async def ask(request: Request) -> JSONResponse:
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        current = engine()
        if current is None or not _answering(current):
            return JSONResponse(status().readiness(), status_code=HTTPStatus.SERVICE_UNAVAILABLE,
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        try:
            question, history = ask_request(body)
            result = await run_in_threadpool(current.ask, question, history)
        except QuestionError as exc:
            return _error(HTTPStatus.BAD_REQUEST, str(exc))
        except QAError as exc:  # the engine stopped (restarting), or its index cannot be read
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(RETRY_AFTER_S)})
        except Exception:  # noqa: BLE001 - a bug: the log gets the traceback, the client a plain error
            log.exception("POST /api/ask failed")
            return JSONResponse({"error": "internal error while answering; see the server's log"}, status_code=HTTPStatus.INTERNAL_SERVER_ERROR)
        return JSONResponse(result.to_dict())

    return [APIRoute("/api/ask", ask, methods=["POST"], include_in_schema=False)]


async def _body(request: Request) -> Any:
    """The request's JSON body, or the error response saying why it cannot be read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The request body is {int(declared):,} bytes; at most {MAX_BODY_BYTES:,} are read.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The request body is over {MAX_BODY_BYTES:,} bytes.")
    try:
        return json.loads(bytes(raw))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested beyond reason
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return _error(HTTPStatus.BAD_REQUEST, f'The body must be JSON like {{"question": "...", "history": ["..."]}}: {reason}.')


def _answering(engine: Any) -> bool:
    """Whether the engine answers now, asked without waiting (an in-process Engine always does)."""
    try:
        engine.wait_ready(0)
    except QAError:
        return False
    return True


def _error(code: HTTPStatus, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    log.warning("POST /api/ask refused (%d): %s", code, reason[:LOGGED_CHARS])
    return JSONResponse({"error": reason}, status_code=code, headers=headers)
