"""POST /api/ask (qa/serving/http_api.py): its contract, on the routes alone.

The routes are mounted on a bare FastAPI app, as app.py mounts them on gradio's, and called
through httpx's ASGI transport: no server, no port. The engine is a tiny index with the fake
embedder (what the answer says does not matter here, only that it is the engine's, whole), or a
stand-in where start-up, a stopped engine or a bug must be shown. The real app and the real
model: tests/test_serving.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import httpx
import pytest
from fastapi import FastAPI

from qa.serving import http_api
from qa.indexing.build import build as build_index
from qa.serving.engine import Engine
from qa.serving.service import EngineStartingError, EngineStoppedError
from qa.serving.status import BUILDING, READY, StartupStatus

QUESTION = "does naloxone reverse opioid overdose"
ANSWERING = StartupStatus(READY, "base", message="Answering.")
STARTING_UP = StartupStatus(BUILDING, None, 0.25, 30.0, message="Building the index; questions wait for it.")


@pytest.fixture
def tiny_engine(tiny_settings, fake_embedder):
    build_index(tiny_settings, fake_embedder)
    return Engine.open(tiny_settings, build="never", embedder=fake_embedder)


def app_for(engine, status: StartupStatus = ANSWERING) -> FastAPI:
    app = FastAPI()
    for route in http_api.routes(lambda: engine, lambda: status):
        app.router.routes.append(route)
    return app


async def _post(app: FastAPI, bodies: list, **kwargs) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
        calls = [client.post("/api/ask", **({"content": b} if isinstance(b, bytes) else {"json": b}), **kwargs)
                 for b in bodies]
        return await asyncio.gather(*calls)


def post(app: FastAPI, *bodies, **kwargs) -> list[httpx.Response]:
    return asyncio.run(_post(app, list(bodies), **kwargs))


def as_json(result) -> dict:
    """What `python -m qa ask --json` prints for a result, read back."""
    return json.loads(json.dumps(result.to_dict(), ensure_ascii=False))


def test_an_answer_is_the_clis_json_object(tiny_engine):
    app = app_for(tiny_engine)
    alone, followup, with_null = post(app, {"question": QUESTION}, {"question": "why?", "history": [QUESTION]},
                                      {"question": QUESTION, "history": None})
    assert alone.status_code == 200 and alone.headers["content-type"] == "application/json"
    assert alone.json() == as_json(tiny_engine.ask(QUESTION))
    assert followup.json() == as_json(tiny_engine.ask("why?", [QUESTION]))
    assert with_null.json() == alone.json()
    assert set(alone.json()) == {"question", "kind", "found", "emergency", "answer", "answer_source", "context",
                                 "passages"}


BAD = [
    (b"", "must be JSON"),
    (b"not json {", "must be JSON"),
    (b"\xff\xfe garbage", "must be JSON"),
    (b"[" * 100_000, "must be JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'"a question"', "expected a JSON object"),
    (b"{}", "expected a JSON object"),
    ({"history": [QUESTION]}, "expected a JSON object"),
    ({"question": 12}, "The question must be text"),
    ({"question": None}, "The question must be text"),
    ({"question": [QUESTION]}, "The question must be text"),
    ({"question": "why?", "history": QUESTION}, 'history must be a list'),
    ({"question": "why?", "history": [QUESTION, 3]}, 'history must be a list'),
    ({"question": "why?", "history": {"a": 1}}, 'history must be a list'),
    ({"question": ""}, "Please type a question"),
    ({"question": " \n\t "}, "Please type a question"),
    ({"question": "x" * 3000}, "at most 2,000 characters"),
]


@pytest.mark.parametrize("body, reason", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_gets_400_with_the_reason_and_no_traceback(tiny_engine, caplog, body, reason):
    caplog.set_level(logging.WARNING, logger="qa.serving.http_api")
    [response] = post(app_for(tiny_engine), body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and reason in response.json()["error"], response.json()
    assert "Traceback" not in response.text
    records = [r for r in caplog.records if r.name == "qa.serving.http_api"]
    assert len(records) == 1 and records[0].exc_info is None  # one line, no traceback


def test_a_body_over_the_limit_gets_413_without_being_read_whole(tiny_engine):
    big = json.dumps({"question": "x" * (http_api.MAX_BODY_BYTES + 10)}).encode()
    [response] = post(app_for(tiny_engine), big)
    assert response.status_code == 413 and "at most 1,000,000" in response.json()["error"]


def test_only_post_is_allowed(tiny_engine):
    async def get():
        transport = httpx.ASGITransport(app=app_for(tiny_engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/api/ask")
    assert asyncio.run(get()).status_code == 405


class Starting:
    """An engine process still loading: wait_ready(0) says so, as EngineProcess does."""

    def wait_ready(self, timeout=None):
        raise EngineStartingError("The answering engine is still loading; please try again in a moment.")

    def ask(self, question, history=()):
        raise AssertionError("asked before the engine was ready")


def test_during_start_up_the_answer_is_503_with_the_ready_body():
    for engine in (None, Starting()):  # the app itself still starting, or its engine
        [response] = post(app_for(engine, STARTING_UP), {"question": QUESTION})
        assert response.status_code == 503
        assert response.json() == STARTING_UP.readiness()
        assert response.headers["retry-after"] == str(http_api.RETRY_AFTER_S)


def test_bad_input_during_start_up_is_still_bad_input():
    [response] = post(app_for(Starting(), STARTING_UP), b"not json")
    assert response.status_code == 400


class Failing:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def wait_ready(self, timeout=None):
        pass

    def ask(self, question, history=()):
        raise self.error


def test_a_stopped_engine_gets_503_and_a_bug_gets_500_without_its_traceback(caplog):
    stopped = "The answering engine stopped unexpectedly (exit code -9) and is being restarted"
    [response] = post(app_for(Failing(EngineStoppedError(stopped))), {"question": QUESTION})
    assert response.status_code == 503 and response.json() == {"error": stopped}
    caplog.set_level(logging.WARNING, logger="qa.serving.http_api")
    [response] = post(app_for(Failing(ZeroDivisionError("secret detail"))), {"question": QUESTION})
    assert response.status_code == 500 and set(response.json()) == {"error"}
    assert "secret detail" not in response.text and "Traceback" not in response.text
    assert any(r.exc_info for r in caplog.records if r.name == "qa.serving.http_api")  # the log has it


class Gate:
    """An engine whose ask() returns only once `width` questions are inside it at the same time."""

    def __init__(self, inner: Engine, width: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(width, timeout=20)

    def wait_ready(self, timeout=None):
        pass

    def ask(self, question, history=()):
        self.barrier.wait()  # breaks (and the test fails) if the route lets fewer in at once
        return self.inner.ask(question, history)


def test_concurrent_requests_reach_the_engine_together_and_get_their_own_answers(tiny_engine):
    questions = [f"{q} {n}" for n in range(4) for q in (QUESTION, "what is ketamine", "opioid withdrawal")]
    expected = [as_json(tiny_engine.ask(q)) for q in questions]
    responses = post(app_for(Gate(tiny_engine, len(questions))), *({"question": q} for q in questions))
    assert [r.status_code for r in responses] == [200] * len(questions)
    assert [r.json() for r in responses] == expected
