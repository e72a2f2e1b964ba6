"""Serving under stress: a rebuild while the app answers, malformed API calls, the concurrency
bench's smoke run (hostile text through the chat function: tests/test_chat.py, fast tier).

All real: `python app.py` processes, the real model and index, `python -m qa build`.
- The shared app (tests/app_server.py) takes the malformed calls and the bench smoke run.
- The rebuild test changes its corpus, so it gets an app of its own, on a copy of corpus/ in a
  temporary folder (`--corpus`, `--index`); its index starts as a copy of the shared
  app's (same articles, same model), so it starts without embedding anything, and its rebuild
  embeds only the new article.
Every request has a time-out and every loop a count and time bound; all traffic goes to
127.0.0.1 servers started here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # gradio_client: no telemetry

import httpx  # noqa: E402
import pytest  # noqa: E402
from gradio_client import Client  # noqa: E402

from app_server import (NALOXONE_ANSWER, NALOXONE_TITLE, NOT_FOUND, ROOT, app_server,  # noqa: E402, F401
                        child_env, cited_source_title, reply_text, start_app)

from conftest import CORPUS  # noqa: E402
from qa.chat import FAILURE  # noqa: E402

NALOXONE_Q = "does naloxone reverse ketamine"
REQUEST_TIMEOUT = 90  # s, one reply, on a busy 2-core machine
BUILD_TIMEOUT = 300  # s, `python -m qa build` (model load + the new article)

MELATONIN_FILE = "melatonin-and-sleep.txt"
MELATONIN_TITLE = "Melatonin And Sleep: What The Hormone Does"
MELATONIN_Q = "what dose of melatonin works for jet lag"
MELATONIN_ANSWER = ("For jet lag, a dose of 0.5 milligrams of melatonin taken at the destination's bedtime "
                    "works as well as larger doses.")
MELATONIN = f"""{MELATONIN_TITLE}

What Is Melatonin?

Melatonin is a hormone that the pineal gland releases in the evening, when the light fades. It tells the body that it is time to sleep.

Melatonin For Jet Lag

{MELATONIN_ANSWER} Travellers crossing five or more time zones benefit the most.

Leave a Comment
"""


def new_client(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, httpx_kwargs={"timeout": REQUEST_TIMEOUT})


def ask(client: Client, message, timeout: float = REQUEST_TIMEOUT):
    """One /chat call that cannot hang the test: the job is cancelled after `timeout` seconds."""
    job = client.submit(message, api_name="/chat")
    try:
        return job.result(timeout=timeout)
    except TimeoutError:
        job.cancel()
        raise


def assert_naloxone_reply(reply) -> None:
    assert isinstance(reply, str), reply
    assert reply_text(reply).startswith(NALOXONE_ANSWER + " [1]"), reply_text(reply)[:300]
    assert cited_source_title(reply) == NALOXONE_TITLE


def copy_index(source: Path, target: Path) -> Path:
    """A built index folder, without its build lock or a build's leftovers."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".build.lock", ".tmp-*", "CURRENT.*.tmp"))
    return target


@pytest.fixture(scope="module")
def rebuild_app(app_server, tmp_path_factory):  # noqa: F811
    """An app of its own on a copy of corpus/ (the rebuild test adds an article to it)."""
    work = tmp_path_factory.mktemp("rebuild")
    corpus = work / "corpus"
    shutil.copytree(CORPUS, corpus)
    index = copy_index(app_server.index_dir, work / "index")
    server = start_app(work, index_dir=index, corpus_dir=corpus)
    server.corpus_dir = corpus
    yield server
    server.stop()


# ------------------------------------------------------------------ a. rebuild while serving

def test_rebuild_while_serving_keeps_answering_and_swaps_in_the_new_article(rebuild_app):
    client = new_client(rebuild_app.url)
    assert_naloxone_reply(ask(client, NALOXONE_Q))
    assert reply_text(ask(client, MELATONIN_Q)).startswith(NOT_FOUND)  # not in the articles yet
    pid = rebuild_app.process.pid

    (rebuild_app.corpus_dir / MELATONIN_FILE).write_text(MELATONIN, encoding="utf-8")
    build_log = rebuild_app.log_path.with_name("build.log")
    with open(build_log, "wb") as log:
        build = subprocess.Popen(
            [sys.executable, "-m", "qa", "build", "--corpus", str(rebuild_app.corpus_dir),
             "--index", str(rebuild_app.index_dir)],
            cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    asked, during, melatonin_found = 0, 0, False
    deadline = time.monotonic() + BUILD_TIMEOUT
    try:
        while build.poll() is None and asked < 400 and time.monotonic() < deadline:
            client.reset_session()  # each question on its own: no follow-up reading
            question = MELATONIN_Q if asked % 3 == 2 else NALOXONE_Q
            reply = ask(client, question)
            asked += 1
            during += build.poll() is None  # answered while the build was still running
            if question == NALOXONE_Q:
                assert_naloxone_reply(reply)  # the same answer from the old index and the new
            else:  # old index: not found; once the new one is live: its answer, and never back
                found = reply_text(reply).startswith(MELATONIN_ANSWER)
                assert found or (reply_text(reply).startswith(NOT_FOUND) and not melatonin_found), reply
                melatonin_found |= found
        build.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if build.poll() is None:
            build.kill()
            build.wait(timeout=30)
    build_output = build_log.read_text(errors="replace")
    assert build.returncode == 0, build_output[-3000:]
    embedded = re.search(r"embedded: (\d+)\s+reused from cache: (\d+)", build_output)
    assert embedded and int(embedded.group(1)) > 0 and int(embedded.group(2)) > 0, build_output[-2000:]
    assert during >= 1, f"no question was answered while the build ran ({asked} asked)"
    print(f"rebuild: {asked} questions asked, {during} answered while the build ran, "
          f"melatonin found before the build exited: {melatonin_found}")

    reply = ask(client, MELATONIN_Q)  # after the build: the new article, same process
    assert reply_text(reply).startswith(MELATONIN_ANSWER + " [1]"), reply_text(reply)[:300]
    assert cited_source_title(reply) == MELATONIN_TITLE
    assert_naloxone_reply(ask(client, NALOXONE_Q))
    assert rebuild_app.process.poll() is None and rebuild_app.process.pid == pid  # never restarted
    assert "Traceback" not in rebuild_app.log_tail(20000)
    client.close()


# ------------------------------------------------------------------ b. malformed API calls

def sse_events(http: httpx.Client, event_id: str) -> list[tuple[str, str]]:
    """The (event, data) pairs of one /call/chat result stream (the server closes it when done).

    For an unknown event id Gradio 6.31 sends its error event and then aborts the stream
    ("response already started" in the server log), so an abrupt end after the events is accepted.
    """
    text = ""
    try:
        with http.stream("GET", f"/gradio_api/call/chat/{event_id}") as response:
            for chunk in response.iter_text():
                text += chunk
    except httpx.RemoteProtocolError:
        if "event: " not in text:
            raise
    return re.findall(r"^event: (\w+)\ndata: (.*)$", text, flags=re.M)


def call_chat(http: httpx.Client, body: dict) -> list[tuple[str, str]]:
    response = http.post("/gradio_api/call/chat", json=body)
    assert response.status_code == 200, response.text
    return sse_events(http, response.json()["event_id"])


def test_malformed_api_calls_get_errors_and_the_server_keeps_serving(app_server):  # noqa: F811
    log_before = len(app_server.log_tail(10**9))
    with httpx.Client(base_url=app_server.url.rstrip("/"), timeout=REQUEST_TIMEOUT) as http:
        info = http.get("/gradio_api/info")
        assert info.status_code == 200 and "/chat" in info.json()["named_endpoints"]

        json_headers = {"Content-Type": "application/json"}
        for body in (b"not json {", b"[1, 2]", b'{"data": "not a list"}', b"{}", b'{"data": {"message": 1}}',
                     b"\xff\xfe garbage", b"{" * 100_000, b"[" * 100_000, b"x" * 5_000_000):
            response = http.post("/gradio_api/call/chat", content=body, headers=json_headers)
            assert 400 <= response.status_code < 500, (body[:40], response.status_code, response.text[:200])
        response = http.post("/gradio_api/queue/join", json={"data": [NALOXONE_Q], "fn_index": 0})
        assert response.status_code == 400  # no session hash
        response = http.post("/gradio_api/queue/join", json={"data": [NALOXONE_Q], "fn_index": "x",
                                                             "session_hash": "abc"})
        assert response.status_code == 422
        # No such endpoint / function: an error status. (Gradio 6.31 answers these with 500, from a
        # FnIndexInferError / KeyError inside gradio.route_utils.get_fn, not from the app, and then
        # drops the keep-alive connection: so each on a connection of its own.)
        for path, body in (("/gradio_api/call/no_such_endpoint", {"data": [NALOXONE_Q]}),
                           ("/gradio_api/queue/join", {"data": [NALOXONE_Q], "fn_index": 999, "session_hash": "abc"})):
            response = httpx.post(app_server.url.rstrip("/") + path, json=body, timeout=REQUEST_TIMEOUT)
            assert response.status_code >= 400, (path, response.status_code)
        # A result stream for an event that does not exist: an error event at once, not a wait.
        assert [e for e, _ in sse_events(http, "0" * 32)] == ["error"]

        # Accepted by the queue, then: an error event (no message at all) ...
        assert [e for e, _ in call_chat(http, {"data": []})] == ["error"]
        # ... a null message is an empty question: the usual prompt, no traceback in the log ...
        events = call_chat(http, {"data": [None]})
        assert "Please type a question" in reply_text(final_reply(events))
        # ... or a reply (the Textbox turns a number or a list into its text; too long is refused).
        for body in ({"data": [123]}, {"data": [["<script>x</script>"]]}, {"data": ["a", "b", "c"]}):
            reply = final_reply(call_chat(http, body))
            assert isinstance(reply, str) and reply.startswith('<div class="qa-reply"')
            assert "<script" not in reply and FAILURE not in reply_text(reply)
        started = time.monotonic()
        events = call_chat(http, {"data": ["x" * 2_000_000]})  # a ~2 MB body
        assert "2,000,000 characters long" in reply_text(final_reply(events))
        assert time.monotonic() - started < REQUEST_TIMEOUT

    client = new_client(app_server.url)
    for message in (None, 123, 4.5, True, ["a list"], {"a": "dict"}):
        reply = ask(client, message)
        assert isinstance(reply, str) and reply.startswith('<div class="qa-reply"'), (message, reply)
        assert FAILURE not in reply_text(reply)

    # /ask refuses what it cannot ask: an empty question, a history that is not a list, no data at all.
    with httpx.Client(base_url=app_server.url.rstrip("/"), timeout=REQUEST_TIMEOUT) as http:
        for data in (["", []], ["x", 5], [5, []], []):
            event_id = http.post("/gradio_api/call/ask", json={"data": data}).json()["event_id"]
            with http.stream("GET", f"/gradio_api/call/ask/{event_id}") as response:
                assert "event: error" in "".join(response.iter_text()), data

    assert app_server.process.poll() is None, app_server.log_tail()
    assert_naloxone_reply(ask(new_client(app_server.url), NALOXONE_Q))
    client.close()
    # Each rejected request cost the log one line, not a traceback.
    log = app_server.log_tail(10**9)[log_before:]
    assert "Traceback" not in log, log[-3000:]
    assert log.count("rejected a request: Error: Please type a question") >= 1, log[-3000:]


def final_reply(events: list[tuple[str, str]]) -> str:
    """The reply of a /chat result stream: the page's chat function is a generator (app.respond_when_ready:
    the start-up status, then the answer), so "generating" events may come before the one "complete"."""
    kinds = [kind for kind, _ in events]
    assert kinds and kinds[-1] == "complete" and set(kinds[:-1]) <= {"generating"}, events
    return json.loads(events[-1][1])[0]


def test_direct_rest_route_cannot_skip_the_queue(app_server):  # noqa: F811
    with httpx.Client(base_url=app_server.url.rstrip("/"), timeout=REQUEST_TIMEOUT) as http:
        response = http.post("/gradio_api/run/chat", json={"data": [NALOXONE_Q, None]})
    assert response.status_code == 404, response.text[:200]


# ------------------------------------------------------------------ c. the concurrency bench, smoke

def test_concurrency_bench_quick_run_passes(app_server):  # noqa: F811
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "concurrency.py"), "--quick", "--url", app_server.url],
                         cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = dict(re.findall(r"^(errors|mismatches vs reference|answers received)\s{2,}(\S+)$", run.stdout, re.M))
    assert table == {"answers received": "12", "errors": "0", "mismatches vs reference": "0"}, run.stdout


# d. hostile text through the chat function: tests/test_chat.py (fast tier, fake embedder).
