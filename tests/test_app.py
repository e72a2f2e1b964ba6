"""The chat page's behaviour: the real app over HTTP, and the page's own wiring.

No mocks: the app runs as `python app.py` in a subprocess (tests/app_server.py). What a message gets
back (qa/serving/chat.py) and how it looks (qa/serving/render.py) are tested in tests/test_chat.py, in the fast tier.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import subprocess
import sys

import pytest
from gradio_client import Client

from app_server import (NALOXONE_ANSWER, NALOXONE_TITLE, NOT_FOUND, ROOT, app_server,  # noqa: F401
                        child_env, cited_source_title, reply_text)

import app  # noqa: E402  (installed by `pip install -e .`, like qa)
from qa.serving.chat import reply_id_in  # noqa: E402
from qa.feedback.store import UNAVAILABLE  # noqa: E402
from qa.serving.render import text_html  # noqa: E402
from qa.settings import Settings  # noqa: E402

IMG = "<img src=x onerror=\"document.title='pwned'\">"
SCRIPT = "<script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def client(app_server):  # noqa: F811
    return Client(app_server.url, verbose=False)


# ------------------------------------------------------------------ over HTTP

def test_chat_endpoint_answers_with_the_naloxone_article(client):
    reply = client.predict("does naloxone reverse ketamine", api_name="/chat")
    assert reply_text(reply).startswith(NALOXONE_ANSWER + " [1]")
    assert cited_source_title(reply) == NALOXONE_TITLE
    assert "<details>" in reply and "<summary>" in reply
    assert f"<mark>{text_html(NALOXONE_ANSWER)}</mark>" in reply


def test_follow_up_uses_the_session_history(app_server):  # noqa: F811
    # /chat takes only the message: the conversation lives in the client's
    # session on the server (ChatInterface's state), so a follow-up is simply
    # the next call on the same Client.
    conversation = Client(app_server.url, verbose=False)
    conversation.predict("does naloxone reverse ketamine", api_name="/chat")
    reply = conversation.predict("why not?", api_name="/chat")
    assert cited_source_title(reply) == NALOXONE_TITLE
    assert "Read as a follow-up: “does naloxone reverse ketamine" in reply_text(reply)  # topic restored

    # The same question with no conversation behind it has no topic to restore.
    alone = Client(app_server.url, verbose=False).predict("why not?", api_name="/chat")
    assert reply_text(alone).startswith(NOT_FOUND)
    # ... and a reset session forgets the conversation.
    conversation.reset_session()
    assert reply_text(conversation.predict("why not?", api_name="/chat")).startswith(NOT_FOUND)


def test_bad_input_over_http_gets_a_message(client):
    assert "Please type a question" in reply_text(client.predict("", api_name="/chat"))
    refusal = reply_text(client.predict("x" * 2001, api_name="/chat"))
    assert "2,001 characters" in refusal and "2,000" in refusal
    reply = client.predict(IMG, api_name="/chat")
    assert "<img" not in reply and "Traceback" not in reply


def test_page_has_note_and_examples(app_server):  # noqa: F811
    import urllib.request
    with urllib.request.urlopen(app_server.url, timeout=10) as response:
        page = response.read().decode()
    assert "not medical advice" in page and "emergency" in page
    assert "does naloxone reverse ketamine" in page  # an example, from the question bank
    assert "Ask the articles" in page and "ketamine &amp; naloxone" not in page and "ketamine & naloxone" not in page


def test_a_page_over_other_articles_never_names_ketamine(tmp_path):
    (tmp_path / "fentanyl.txt").write_text("Fentanyl Facts\n\nWhat Is Fentanyl?\n\nFentanyl is a synthetic opioid."
                                           "\n", encoding="utf-8")
    page = app.build_page(Settings(corpus_dir=tmp_path))
    words = json.dumps(page.config, default=str).lower()
    assert "what is fentanyl?" in words and "ask the articles" in words  # its own example, a neutral title
    assert "ketamine" not in words and "naloxone" not in words
    titled = app.build_page(Settings(corpus_dir=tmp_path, page_title="Fentanyl: ask the leaflets",
                                     page_intro="Quotes from our leaflets.", page_examples=("is fentanyl strong",)))
    config = json.dumps(titled.config, default=str)
    assert all(text in config for text in ("Fentanyl: ask the leaflets", "Quotes from our leaflets.",
                                           "is fentanyl strong"))
    app.build_page(Settings())  # the module's page words back to this app's own corpus


def test_the_server_log_is_quiet(app_server):  # noqa: F811
    log = app_server.log_tail(1_000_000)
    for stage in ("Loading the model and the index", "Serving the page on", "Ready: 5 articles"):
        assert stage in log
    assert not re.search(r"\d+%\|", log), "a progress bar in the log"
    assert "deprecat" not in log.lower() and "share=True" not in log and "Warning" not in log


# ------------------------------------------------------------------ /ready, for scripts and load balancers

def test_the_readiness_endpoint_says_the_app_answers_with_its_tuned_model(app_server):  # noqa: F811
    import urllib.request
    with urllib.request.urlopen(app_server.url + "ready", timeout=30) as response:
        assert response.status == 200 and response.headers["content-type"] == "application/json"
        body = json.load(response)
    assert body == {"ready": True, "stage": "ready", "model": "tuned", "progress": None, "seconds_left": None,
                    "message": "Answering with the model tuned on the example questions.", "error": None}
    assert "GET /ready" in (ROOT / "README.md").read_text(encoding="utf-8")  # scripts find it there
    assert "GET /ready" in (ROOT / "docs" / "MAINTAINING.md").read_text(encoding="utf-8")  # and what it says


# ------------------------------------------------------------------ /ask, the API for scripts

ASKED = [("what are the symptoms of opioid withdrawal", []),
         ("my friend took special k and now he won't wake up, will narcan help??", []),
         ("why not?", ["does naloxone reverse ketamine"]), ("ok thanks", []), ("hilft Naloxon bei Ketamin?", []),
         ("what is the capital of France", [])]


def cli_answers(app_server, *args, stdin=None):  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "qa", "ask", "--index", str(app_server.index_dir), *args],
                          input=stdin, capture_output=True, text=True, timeout=600, cwd=ROOT, env=child_env())
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_ask_endpoint_returns_what_the_cli_prints(app_server, client):  # noqa: F811
    question, history = ASKED[0]
    api = client.predict(question, history, api_name="/ask")
    assert cli_answers(app_server, "--json", question) == [api]
    assert api["kind"] == "answer" and len(api["context"]["list"]["items"]) == 10
    assert set(api["passages"][0]) >= {"source", "title", "section", "text", "score", "match"}
    # The rest in one batch: --jsonl writes the same objects, one per line. It embeds the lines that came
    # together in one batch, whose vectors differ from a question's alone in the last bits: a score may
    # differ by one in the last of the six decimals printed, nothing else.
    lines = "".join(json.dumps({"question": q, "history": h}) + "\n" for q, h in ASKED[1:])
    batched = cli_answers(app_server, "--jsonl", stdin=lines)
    alone = [client.predict(q, h, api_name="/ask") for q, h in ASKED[1:]]
    assert without_floats(batched) == without_floats(alone)
    assert largest_float_difference(batched, alone) < 1.5e-6


def without_floats(value):
    """`value` (parsed JSON) with every float replaced by None."""
    if isinstance(value, dict):
        return {key: without_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_floats(item) for item in value]
    return None if isinstance(value, float) else value


def largest_float_difference(a, b) -> float:
    """The largest difference between the floats at the same places of two parsed JSON values of one shape."""
    if isinstance(a, dict):
        return max((largest_float_difference(a[key], b[key]) for key in a), default=0.0)
    if isinstance(a, list):
        return max((largest_float_difference(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    return abs(a - b) if isinstance(a, float) else 0.0


def test_ask_endpoint_refuses_bad_input_with_the_reason(client):
    from gradio_client.exceptions import AppError
    with pytest.raises(AppError, match="Please type a question"):
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match="2,001 characters"):
        client.predict("x" * 2001, api_name="/ask")
    assert client.predict("does naloxone reverse ketamine", api_name="/ask")["answer"] == NALOXONE_ANSWER


def readme_script(name: str) -> str:
    """The Python example of the docs (docs/MAINTAINING.md, linked from the README) that calls `name`."""
    text = (ROOT / "docs" / "MAINTAINING.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    return next(block for block in blocks if f'api_name="{name}"' in block)


def test_the_readmes_script_example_prints_a_readable_answer(app_server):  # noqa: F811
    script = readme_script("/ask").replace("http://127.0.0.1:7860/", app_server.url)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=child_env())
    assert done.returncode == 0, done.stderr
    assert "<" not in done.stdout and "&#" not in done.stdout  # text, not the page's markup
    assert "Common symptoms include:" in done.stdout and "Drug Cravings" in done.stdout
    assert "Ketamine For Opioid Withdrawal" in done.stdout


# ------------------------------------------------------------------ the page's own wiring

def test_an_empty_message_is_not_sent_and_the_box_says_why():
    # On the page an empty message is not even sent (no blank bubble): the validator says what the chat would.
    assert app.validate_message("  ")["is_valid"] is False and app.validate_message("hi")["is_valid"] is True
    assert app.validate_message(None)["message"] == app.CHAT.empty_prompt()


def test_the_page_hands_every_message_to_its_chat(monkeypatch):
    asked = []

    class Recording:
        def respond_when_ready(self, message, history):
            asked.append((message, history))
            yield "<div>reply</div>"

    monkeypatch.setattr(app, "CHAT", Recording())
    assert list(app.respond_when_ready("hello", [])) == ["<div>reply</div>"] and asked == [("hello", [])]


# Replies, votes and their HTML are tested without the page, in tests/test_chat.py (fast tier).
ANSWERED = "does narcan come as a shot or a spray"
UNANSWERED = "how much does narcan cost at the pharmacy"


def feedback_rows(path, what="kind, question, history, refused, answer, source, section, generation, comment"):
    import sqlite3
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {what} FROM feedback ORDER BY id").fetchall()


# ------------------------------------------------------------------ feedback over HTTP

def test_scripts_vote_through_the_feedback_endpoint(app_server, client):  # noqa: F811
    reply = client.predict(ANSWERED, api_name="/chat")
    reply_id = reply_id_in(reply)
    assert client.predict(reply_id, "down", "<i>not</i> what I asked", api_name="/feedback") == {
        "saved": True, "message": "Thanks, your comment is saved."}
    assert client.predict(reply_id, "sideways", api_name="/feedback")["saved"] is False
    rows = feedback_rows(app_server.feedback_db, "kind, question, refused, comment, reply")
    assert ("dislike", ANSWERED, 0, "<i>not</i> what I asked", reply_id) in rows


def test_a_corrupt_database_file_leaves_the_served_page_answering(app_server, client):  # noqa: F811
    import shutil
    database = app_server.feedback_db
    parts = [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]
    kept = database.parent / "kept"
    kept.mkdir()
    for part in parts:  # the app opens a connection per vote: nothing holds these open
        if part.exists():
            shutil.move(part, kept / part.name)
    try:
        database.write_bytes(b"garbage, not SQLite\n" * 500)
        answered = client.predict(ANSWERED, api_name="/chat")
        assert cited_source_title(answered)
        assert reply_text(client.predict(UNANSWERED, api_name="/chat")).startswith(NOT_FOUND)
        vote = client.predict(reply_id_in(answered), "up", api_name="/feedback")
        assert vote == {"saved": False, "message": UNAVAILABLE}
        log = app_server.log_tail(20_000)
        assert "feedback not saved" in log and "file is not a database" in log
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
        for saved in kept.iterdir():
            shutil.move(saved, database.parent / saved.name)
        kept.rmdir()


def test_gradio_starts_without_its_stubs_or_pandas(tmp_path):
    # A fresh process, as `python app.py`: gradio is first imported by app.py, without rewriting its type stubs
    # and without pandas; pandas is imported whole the first time something uses it.
    script = ("import sys, importlib.util, app, gradio, gradio.component_meta as meta\n"
              "print(meta.create_or_modify_pyi(gradio.Textbox, 'Textbox', []) is None, "
              "meta.create_or_modify_pyi.__module__ == 'qa.serving.gradio_startup', gradio.Blocks is not None)\n"
              "print(importlib.util.find_spec('pandas') is not None, 'pandas.core' in sys.modules)\n"
              "import pandas\n"
              "print(len(pandas.DataFrame({'a': [1, 2]})), type(sys.modules['pandas']).__name__)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "True", "False", "2", "module"]


def test_the_page_gets_its_web_app_from_launch_alone(tmp_path):
    # gradio makes a web app whenever a Blocks closes or queue() is called; app.py builds the page without those
    # (qa/serving/gradio_startup.py) and launch() makes the one that serves, routes and all.
    import urllib.request

    from gradio.routes import App
    from qa.serving.gradio_startup import built_without_throwaway_apps

    (tmp_path / "fentanyl.txt").write_text("Fentanyl Facts\n\nFentanyl is a synthetic opioid.\n", encoding="utf-8")
    make_app = App.__dict__["create_app"]
    page = built_without_throwaway_apps(lambda: app.build_page(Settings(corpus_dir=tmp_path)))
    assert page.app is None and App.__dict__["create_app"] is make_app
    page.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True, ssr_mode=False,
                app_kwargs={"routes": app.READY_ROUTES})
    try:
        assert page.app is not None
        with urllib.request.urlopen(page.local_url + "config", timeout=30) as reply:
            config = json.loads(reply.read())
        assert any(dependency.get("api_name") == "chat" for dependency in config["dependencies"])
        with urllib.request.urlopen(page.local_url + "gradio_api/info", timeout=30) as reply:
            assert "/chat" in json.loads(reply.read())["named_endpoints"]
    finally:
        page.close()
        app.build_page(Settings())  # the module's page words back to this app's own corpus


def test_a_page_gradio_cannot_build_without_its_app_is_built_as_gradio_builds_it():
    from gradio.routes import App
    from qa.serving.gradio_startup import built_without_throwaway_apps

    tries = []

    def build():  # a gradio that reads its app while building: fails without it
        tries.append(App.create_app(None))
        return tries[-1].title

    fake_app = type("FakeApp", (), {"title": "built"})
    make_app = App.__dict__["create_app"]
    App.create_app = staticmethod(lambda *args, **kwargs: fake_app)
    try:
        inner = App.__dict__["create_app"]
        assert built_without_throwaway_apps(build) == "built"
        assert tries == [None, fake_app] and App.__dict__["create_app"] is inner
    finally:
        App.create_app = make_app
