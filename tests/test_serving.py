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
from qa.serving.chat import FAILURE  # noqa: E402

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


def test_http_load_bench_quick_run_passes(app_server):  # noqa: F811
    # Its own apps on the shared app's index: a fresh engine for the reference and for the load.
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "http_load.py"), "--quick",
                          "--index", str(app_server.index_dir)],
                         cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    quiet = re.search(r"^quiet\s+2\s+(\d+)\s+(\d+)\s+(\d+)\s", run.stdout, re.M)
    assert quiet and quiet.groups() == ("12", "0", "0"), run.stdout  # answers, errors, mismatches


# ------------------------------------------------------------------ d. POST /api/ask, the plain JSON route

API_KEYS = [((), NALOXONE_Q), ((NALOXONE_Q,), "why not?"), ((), MELATONIN_Q), ((), "hi!"),
            ((), "what are the symptoms of opioid withdrawal"), (("what is a k-hole",), "does it last?"),
            ((), "my friend is not breathing after taking opioids"), ((), "is ketamine addictive"),
            ((), "how long does narcan last"), ((), "can ketamine help with depression"),
            ((), "how is ketamine therapy given"), ((), "what does naloxone do")]


def cli_json(index_dir: Path, question: str, history: tuple[str, ...] = ()) -> dict:
    """What `python -m qa ask --json` prints for the question, on the same index."""
    command = [sys.executable, "-m", "qa", "ask", "--json", "--index", str(index_dir), question]
    command += [arg for earlier in history for arg in ("--history", earlier)]
    run = subprocess.run(command, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def log_since(server, start: int) -> str:
    return server.log_path.read_text(errors="replace")[start:]


def test_api_ask_answers_with_the_clis_json_and_refuses_bad_input(app_server):  # noqa: F811
    start = len(app_server.log_path.read_text(errors="replace"))  # the shared app's log has other tests' lines
    with httpx.Client(base_url=app_server.url.rstrip("/"), timeout=REQUEST_TIMEOUT) as http:
        for history, question in API_KEYS[:2]:
            response = http.post("/api/ask", json={"question": question, "history": list(history)})
            assert response.status_code == 200, response.text[:300]
            assert response.json() == cli_json(app_server.index_dir, question, history)
        for body, code in ((b"not json", 400), (b'{"question": ""}', 400), (b'{"question": 5}', 400),
                           (b'{"question": "why?", "history": "x"}', 400), (b"[" * 50_000, 400),
                           (json.dumps({"question": "x" * 3000}).encode(), 400),
                           (json.dumps({"question": "x" * 2_000_000}).encode(), 413)):
            response = http.post("/api/ask", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == code and set(response.json()) == {"error"}, (body[:30], response.text)
        assert http.get("/api/ask").status_code == 405
    assert "Traceback" not in log_since(app_server, start)


def test_the_readmes_curl_line_works(app_server):  # noqa: F811
    import shlex
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"^    \$ (curl -s http://127\.0\.0\.1:7860/api/ask .*)$", readme, re.M)
    assert line, "README: no curl line for POST /api/ask"
    command = [arg.replace("http://127.0.0.1:7860/", app_server.url) for arg in shlex.split(line.group(1))]
    run = subprocess.run(command, capture_output=True, text=True, timeout=REQUEST_TIMEOUT)
    assert run.returncode == 0, run.stderr
    reply = json.loads(run.stdout)
    request = json.loads(command[command.index("-d") + 1])
    assert reply == cli_json(app_server.index_dir, request["question"], tuple(request["history"]))
    assert reply["found"] and reply["answer"]


def test_api_ask_answers_concurrent_questions_as_it_answers_each_alone(app_server):  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor
    keys = API_KEYS * 4

    def ask_api(key):
        with httpx.Client(base_url=app_server.url.rstrip("/"), timeout=REQUEST_TIMEOUT) as http:
            response = http.post("/api/ask", json={"question": key[1], "history": list(key[0])})
            return response.status_code, response.content

    with ThreadPoolExecutor(max_workers=20) as pool:
        together = list(pool.map(ask_api, keys))
    alone = {key: ask_api(key) for key in API_KEYS}
    assert all(status == 200 for status, _ in together), together[:3]
    assert [content for _, content in together] == [alone[key][1] for key in keys]


@pytest.mark.slow  # a real app, and a real build (of three tiny articles)
def test_api_ask_answers_503_with_the_ready_body_until_the_engine_answers(tmp_path):
    from conftest import write_tiny_corpus
    from qa.indexing.index import build_lock
    corpus, index = write_tiny_corpus(tmp_path / "corpus"), tmp_path / "index"
    index.mkdir()
    with build_lock(index):  # "another build is running": the app's engine waits for its index
        server = start_app(tmp_path, index_dir=index, corpus_dir=corpus)
    try:
        with httpx.Client(base_url=server.url.rstrip("/"), timeout=REQUEST_TIMEOUT) as http:
            for _ in range(3):
                response = http.post("/api/ask", json={"question": "what is naloxone"})
                assert response.status_code == 503, response.text
                ready = response.json()
                assert ready["ready"] is False and ready["stage"] in ("starting", "building"), ready
                assert set(ready) == set(http.get("/ready").json())
                assert response.headers["retry-after"].isdigit()
                time.sleep(0.5)
            build = subprocess.run([sys.executable, "-m", "qa", "build", "--corpus", str(corpus), "--index", str(index)],
                                   cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=BUILD_TIMEOUT)
            assert build.returncode == 0, build.stderr[-2000:]
            deadline = time.monotonic() + BUILD_TIMEOUT
            while response.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
                response = http.post("/api/ask", json={"question": "what is naloxone"})
            assert response.status_code == 200 and response.json()["question"] == "what is naloxone", response.text
        assert "Traceback" not in server.log_tail(200_000)
    finally:
        server.stop()


# e. hostile text through the chat function: tests/test_chat.py (fast tier, fake embedder).
